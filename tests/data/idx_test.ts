import assert from "node:assert/strict";
import { encodeIdx, gunzip, gzip, parseIdx, readIdxFile } from "../../src/data/idx.ts";

function bytes(n: number, seed = 1): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 31 + seed * 17) & 0xff);
}

Deno.test("encodeIdx and parseIdx round-trip odd shapes", () => {
  for (const dims of [[1], [7], [13, 1], [3, 5, 7], [2, 28, 28]]) {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = bytes(n);
    const enc = encodeIdx(data, dims);
    assert.equal(enc.length, 4 + 4 * dims.length + n);
    // Magic: 0x00 0x00, type 0x08 (unsigned byte), rank; sizes big-endian.
    assert.deepEqual([...enc.subarray(0, 4)], [0, 0, 8, dims.length]);
    const idx = parseIdx(enc, "x.idx");
    assert.deepEqual(idx.dims, dims);
    assert.deepEqual(idx.data, data);
  }
});

Deno.test("parseIdx reads a big-endian header the way the format defines it", () => {
  // Hand-built header of a [2, 3] unsigned-byte array (sizes 0x00000002, 0x00000003).
  const file = Uint8Array.of(0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6);
  assert.deepEqual(parseIdx(file), { dims: [2, 3], data: Uint8Array.of(1, 2, 3, 4, 5, 6) });
});

Deno.test("parseIdx names the file on a wrong magic number", () => {
  const good = encodeIdx(bytes(6), [6]);
  const gz = Uint8Array.of(0x1f, 0x8b, 8, 0, ...good);
  assert.throws(
    () => parseIdx(gz, "labels.idx"),
    /labels\.idx is not an IDX file: magic number 0x1f8b0800/,
  );
  const zeroRank = Uint8Array.of(0, 0, 8, 0);
  assert.throws(() => parseIdx(zeroRank, "z.idx"), /z\.idx is not an IDX file/);
  const floats = good.slice();
  floats[2] = 0x0d;
  assert.throws(
    () => parseIdx(floats, "f.idx"),
    /f\.idx holds IDX elements of type float32 \(0xd\)/,
  );
});

Deno.test("parseIdx names the file when it is truncated or too long", () => {
  const good = encodeIdx(bytes(3 * 5 * 7), [3, 5, 7]);
  assert.throws(
    () => parseIdx(good.subarray(0, 3), "a"),
    /a is truncated: 3 bytes, shorter than the 4-byte/,
  );
  assert.throws(
    () => parseIdx(good.subarray(0, 10), "b"),
    /b is truncated: 10 bytes, shorter than its 16-byte header/,
  );
  assert.throws(
    () => parseIdx(good.subarray(0, good.length - 1), "c"),
    /c is truncated: the header says \[3, 5, 7\] \(105 bytes of data\) but only 104 follow/,
  );
  assert.throws(
    () => parseIdx(Uint8Array.of(...good, 0, 0), "d"),
    /d has 2 bytes after the \[3, 5, 7\] array/,
  );
});

Deno.test("gzip and gunzip round-trip; corrupt gzip is an error naming the data", async () => {
  const data = bytes(1000);
  const z = await gzip(data);
  assert.deepEqual(await gunzip(z), data);
  await assert.rejects(
    () => gunzip(z.subarray(0, z.length >> 1), "half.gz"),
    /half\.gz is not valid gzip/,
  );
});

Deno.test("readIdxFile reads plain and gzipped files and names a truncated one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = bytes(7 * 7 * 3);
    const enc = encodeIdx(data, [3, 7, 7]);
    await Deno.writeFile(`${dir}/plain`, enc);
    await Deno.writeFile(`${dir}/packed.gz`, await gzip(enc));
    for (const f of ["plain", "packed.gz"]) {
      const idx = await readIdxFile(`${dir}/${f}`);
      assert.deepEqual(idx.dims, [3, 7, 7]);
      assert.deepEqual(idx.data, data);
    }
    const z = await gzip(enc);
    await Deno.writeFile(`${dir}/cut.gz`, z.subarray(0, z.length - 9));
    await assert.rejects(
      () => readIdxFile(`${dir}/cut.gz`),
      new RegExp(`${dir}/cut\\.gz is not valid gzip`),
    );
    await Deno.writeFile(`${dir}/cut`, enc.subarray(0, 50));
    await assert.rejects(() => readIdxFile(`${dir}/cut`), new RegExp(`${dir}/cut is truncated`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gunzip reads a file of several concatenated gzip members (#6.11)", async () => {
  const a = await gzip(encodeIdx(Uint8Array.of(3, 1, 4), [3]));
  const b = await gzip(Uint8Array.of(1, 5));
  const joined = new Uint8Array([...a, ...b]);
  const out = await gunzip(joined, "two-members.gz");
  assert.deepEqual([...out], [...encodeIdx(Uint8Array.of(3, 1, 4), [3]), 1, 5]);
});
