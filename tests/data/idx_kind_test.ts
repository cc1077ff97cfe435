import assert from "node:assert/strict";
import { encodeIdx, parseIdx, readIdxFile } from "../../src/data/idx.ts";
import { fashionMnistFiles, loadFashionMnist } from "../../src/data/fashion_mnist.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseIdx names the kind expected and the kind its magic number says (#25.11)", () => {
  // A labels file (5 labels) whose first bytes are the images' magic: read as images, its
  // labels became sizes, and the file was called truncated by about 1.2e18 bytes.
  const labelsWithImagesMagic = Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 5, 1, 2, 3, 4, 5);
  assert.throws(
    () => parseIdx(labelsWithImagesMagic, "t10k-labels", { expect: "labels" }),
    (e: Error) => {
      assert.match(
        e.message,
        /^t10k-labels should be an IDX labels file \(magic 0x00000801, \[n\]\) but its magic number makes it an IDX images file \(magic 0x00000803, \[n, rows, cols\]\)/,
      );
      assert.doesNotMatch(e.message, /truncated/);
      return true;
    },
  );
  const images = encodeIdx(new Uint8Array(2 * 9), [2, 3, 3]);
  assert.throws(
    () => parseIdx(encodeIdx(Uint8Array.of(1, 2), [2]), "imgs", { expect: "images" }),
    /imgs should be an IDX images file \(magic 0x00000803.*makes it an IDX labels file \(magic 0x00000801/,
  );
  assert.throws(
    () => parseIdx(encodeIdx(new Uint8Array(4), [2, 2]), "m", { expect: "labels" }),
    /m should be an IDX labels file .* makes it an IDX array of 2 dimensions of unsigned byte \(magic 0x00000802\)/,
  );
  assert.throws(
    () => parseIdx(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0), "p.png", { expect: "images" }),
    /p\.png is not an IDX file: magic number 0x89504e47 \(expected 0x00000803 for images\)/,
  );
  assert.deepEqual(parseIdx(images, "ok", { expect: "images" }).dims, [2, 3, 3]);
});

Deno.test("readIdxFile and loadFashionMnist call a directory in a file's place a directory (#25.11)", async () => {
  await withTempDir(async (dir) => {
    const f = fashionMnistFiles("test");
    await Deno.mkdir(`${dir}/${f.images}`);
    await Deno.writeFile(`${dir}/${f.labels}`, encodeIdx(Uint8Array.of(1, 2), [2]));
    await assert.rejects(
      () => readIdxFile(`${dir}/${f.images}`, { expect: "images" }),
      new RegExp(`${dir}/${f.images} is a directory, not an IDX images file`),
    );
    await assert.rejects(
      () => loadFashionMnist({ split: "test", dir, download: false, checkSize: false }),
      (e: Error) => {
        assert.match(e.message, new RegExp(`${f.images} is a directory, not a file`));
        assert.doesNotMatch(e.message, /missing/);
        return true;
      },
    );
    // The labels file given the images' magic: the loader says which file holds what.
    await Deno.remove(`${dir}/${f.images}`);
    await Deno.writeFile(`${dir}/${f.images}`, encodeIdx(new Uint8Array(2 * 784), [2, 28, 28]));
    await Deno.writeFile(`${dir}/${f.labels}`, Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 2, 1, 2));
    await assert.rejects(
      () => loadFashionMnist({ split: "test", dir, download: false, checkSize: false }),
      new RegExp(
        `${dir}/${f.labels} should be an IDX labels file .* makes it an IDX images file`,
      ),
    );
  });
});
