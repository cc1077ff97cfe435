/**
 * Checkpoints that lie, and writes that follow planted symlinks (issue 25, points 1 and 5):
 * each case here was accepted, hung or clobbered a file at 0d6f957.
 */
import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { Module } from "../../src/nn/module.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  type SafetensorsEntry,
  saveCheckpoint,
} from "../../src/train/checkpoint.ts";

/** PyTorch's BatchNorm1d(2) state by name: a parameter, two buffers and the counter. */
class Bn extends Module {
  constructor() {
    super();
    this.registerParameter("weight", Tensor.from([1, 1]));
    this.registerBuffer("running_mean", Tensor.from([0, 0]));
    this.registerBuffer("running_var", Tensor.from([1, 1]));
    this.registerBuffer("num_batches_tracked", Tensor.zeros([]), { integer: true });
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}

const f32 = (...v: number[]): SafetensorsEntry => ({
  dtype: "F32",
  shape: [v.length],
  data: Float32Array.from(v),
});
const good = (): Record<string, SafetensorsEntry> => ({
  weight: f32(0.5, 2),
  running_mean: f32(0.1, -0.2),
  running_var: f32(0.9, 1.1),
  num_batches_tracked: { dtype: "I64", shape: [], data: BigInt64Array.of(3n) },
});

/** Safetensors bytes with `header` as the JSON header and `data` after it. */
function raw(header: unknown, data: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Rejects if `p` has not settled after `ms`: a read that hangs fails the test, not the suite. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

Deno.test("decodeSafetensors refuses overlapping, out-of-order and gapped offsets and trailing bytes (#25.5)", () => {
  const data = new Uint8Array(8);
  const t = (off: [number, number]) => ({ dtype: "F32", shape: [1], data_offsets: off });
  const cases: [unknown, Uint8Array, RegExp][] = [
    // Every tensor at offset 0: the same 4 bytes read as both.
    [
      { a: t([0, 4]), b: t([0, 4]) },
      data.subarray(0, 4),
      /tensor "b" \[0, 4\] overlaps tensor "a"/,
    ],
    [{ a: t([4, 0]) }, data.subarray(0, 4), /tensor "a" has data_offsets \[4, 0\], out of order/],
    [{ a: t([4, 8]) }, data, /4 B between the start of the data and tensor "a"/],
    [{ a: t([0, 4]) }, data, /4 trailing bytes after the last tensor's data/],
  ];
  for (const [header, bytes, msg] of cases) {
    throws(
      () => decodeSafetensors(raw(header, bytes), { name: "m.safetensors" }),
      (e: Error) =>
        /^m\.safetensors is not a valid safetensors file: /.test(e.message) &&
        msg.test(e.message),
      JSON.stringify(header),
    );
  }
  // Tensors listed out of offset order in the header are fine, as in the format's reader.
  const two = new Uint8Array(Float32Array.of(1, 2).buffer);
  const ok2 = decodeSafetensors(raw({ b: t([4, 8]), a: t([0, 4]) }, two));
  deepEqual([...ok2.tensors.a.data, ...ok2.tensors.b.data], [1, 2]);
});

Deno.test("decodeSafetensors refuses NaN and infinities unless asked, naming the tensor and the file (#25.5)", () => {
  for (const v of [NaN, Infinity, -Infinity]) {
    const bytes = encodeSafetensors({ w: f32(1, v) });
    throws(
      () => decodeSafetensors(bytes, { name: "x.safetensors" }),
      new RegExp(`^Error: x\\.safetensors: tensor "w" holds ${v} at index 1; .* must be finite`),
    );
    equal(decodeSafetensors(bytes, { allowNonFinite: true }).tensors.w.data[1], v);
  }
});

Deno.test("decodeSafetensors refuses a header beyond the format's 100 MB before parsing it (#25.5)", () => {
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setBigUint64(0, 2_000_000_000n, true);
  throws(
    () => decodeSafetensors(bytes, { name: "big" }),
    /^Error: big is not a valid safetensors file: the header is declared as 2000000000 B, more than the format's limit of 100000000 B/,
  );
});

gpuTest(
  "loadCheckpoint refuses lies: NaN, negative running_var, bad num_batches_tracked (#25.5)",
  async () => {
    await withDir(async (dir) => {
      const path = `${dir}/m.safetensors`;
      await Deno.writeFile(path, encodeSafetensors(good()));
      const net = new Bn();
      await loadCheckpoint(net, path); // the good file loads
      deepEqual([...await net.namedBuffers()[1][1].toArray()], [...Float32Array.of(0.9, 1.1)]);
      const cases: [Record<string, SafetensorsEntry>, RegExp][] = [
        [{ weight: f32(NaN, 1) }, /tensor "weight" holds NaN at index 0/],
        [
          { running_var: f32(1, -0.5) },
          /"running_var" holds -0\.5 at index 1, which is not a variance/,
        ],
        [
          { num_batches_tracked: { dtype: "I64", shape: [], data: BigInt64Array.of(-2n) } },
          /"num_batches_tracked" holds -2 at index 0, which is not a count, a whole number >= 0/,
        ],
        [
          { num_batches_tracked: { dtype: "F32", shape: [], data: Float32Array.of(2.5) } },
          /"num_batches_tracked" holds 2\.5 at index 0, which is not a count/,
        ],
      ];
      for (const [change, msg] of cases) {
        await Deno.writeFile(path, encodeSafetensors({ ...good(), ...change }));
        const fresh = new Bn();
        await rejects(
          () => loadCheckpoint(fresh, path),
          (e: Error) => e.message.includes(path) && msg.test(e.message),
          msg.source,
        );
        deepEqual([...await fresh.namedBuffers()[1][1].toArray()], [1, 1], "all or nothing");
      }
    });
  },
);

gpuTest(
  "loadCheckpoint refuses a FIFO, a directory and a huge header without reading them (#25.5)",
  async () => {
    await withDir(async (dir) => {
      const fifo = `${dir}/pipe.safetensors`;
      const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      ok(mk.success, "mkfifo");
      await rejects(
        () => within(loadCheckpoint(new Bn(), fifo), 3000, "loadCheckpoint on a FIFO"),
        new RegExp(`Checkpoint ${fifo} is not a regular file \\(a FIFO, socket or device\\)`),
      );
      await rejects(
        () => loadCheckpoint(new Bn(), dir),
        new RegExp(`Checkpoint ${dir} is a directory`),
      );
      // A header declared as 2 GB, in a file that holds 8 MB after it: refused after 8 bytes.
      const big = `${dir}/big.safetensors`;
      const bytes = new Uint8Array(8 + 8_000_000);
      new DataView(bytes.buffer).setBigUint64(0, 2_000_000_000n, true);
      await Deno.writeFile(big, bytes);
      await rejects(
        () => loadCheckpoint(new Bn(), big),
        new RegExp(
          `^Error: ${big} is not a valid safetensors file: the header is declared as 2000000000 B, more than the format's limit`,
        ),
      );
    });
  },
);

gpuTest("saveCheckpoint never writes through a planted symlink (#25.1)", async () => {
  await withDir(async (dir) => {
    const victim = `${dir}/victim.txt`;
    await Deno.writeTextFile(victim, "precious");
    // The temporary name of 0d6f957, planted as a symlink to a file the user can write.
    await Deno.symlink(victim, `${dir}/.model.safetensors.tmp`);
    await saveCheckpoint(new Bn(), `${dir}/model.safetensors`);
    equal(await Deno.readTextFile(victim), "precious");
    ok((await Deno.lstat(`${dir}/model.safetensors`)).isFile, "model.safetensors is a file");
    // The checkpoint itself a symlink: refused, the target untouched.
    await Deno.symlink(victim, `${dir}/link.safetensors`);
    await rejects(
      () => saveCheckpoint(new Bn(), `${dir}/link.safetensors`),
      new RegExp(`${dir}/link\\.safetensors is a symbolic link \\(to ${victim}\\)`),
    );
    equal(await Deno.readTextFile(victim), "precious");
    ok((await Deno.lstat(`${dir}/link.safetensors`)).isSymlink);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".tmp"));
    deepEqual(left, [".model.safetensors.tmp"], "no temporary file of ours is left");
  });
});
