/**
 * Batch norm, training mode: bnlab's WGSL kernels against the float64 CPU reference
 * (the baseline) and against a plain vec4 copy moving the same bytes (the adapter's
 * bandwidth yardstick), on the lecture's LeNet shapes and one ResNet-sized shape.
 *
 * Every GPU measurement encodes ITERS repetitions and then waits once (`sync()`), since
 * one host wait costs ~11 ms on llvmpipe. Outputs are validated against the reference
 * once, before anything is timed. At the end a table gives ms per op and GB/s (bytes
 * actually read and written: forward 12 bytes per element, x read twice and out written
 * once; forward+backward 32 bytes, adding x and dout read for the sums, then x and dout
 * read and dinp written).
 *
 * Run: deno bench -A bench/ops/batch_norm_bench.ts
 *
 * @module
 */
import { adapterInfo, getDevice } from "../../src/gpu/device.ts";
import { grid, launch, Params, sync } from "../../src/gpu/queue.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { batchNorm } from "../../src/ops/batch_norm/batch_norm.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import { refBatchNormBackward, refBatchNormForward } from "../../src/ops/batch_norm/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import copySrc from "./copy.wgsl" with { type: "text" };

await getDevice();
const ITERS = 10;
const WG = 256;

const SHAPES = [[256, 6, 24, 24], [256, 16, 8, 8], [256, 120], [256, 84], [64, 64, 56, 56]];
/** Above this many elements the CPU reference runs only once (it takes seconds). */
const BIG = 4_000_000;

const times = new Map<string, { bytes: number; ms: number[] }>();

/** Times `fn` (which does `ops` operations moving `bytes` each), recording ms per op. */
function timed(key: string, bytes: number, ops: number, fn: () => void | Promise<void>) {
  return async () => {
    const t0 = performance.now();
    await fn();
    const ms = (performance.now() - t0) / ops;
    const e = times.get(key) ?? { bytes, ms: [] };
    e.ms.push(ms);
    times.set(key, e);
  };
}

function copy(src: Tensor, dst: Tensor, n: number): void {
  const n4 = Math.ceil(n / 4);
  launch({
    label: "bench.copy",
    code: copySrc,
    overrides: { WG },
    bindings: [new Params().u32(n4), src.buffer, dst.buffer],
    workgroups: grid(Math.ceil(n4 / WG)),
  });
}

for (const shape of SHAPES) {
  const c = shape[1];
  const n = shape.reduce((a, b) => a * b, 1);
  const group = `[${shape.join(", ")}]`;
  const x = Tensor.randn(shape, { seed: 1, requiresGrad: true });
  const dout = Tensor.randn(shape, { seed: 2 });
  const w = Tensor.randn([c], { seed: 3, requiresGrad: true });
  const b = Tensor.randn([c], { seed: 4, requiresGrad: true });
  const rm = Tensor.zeros([c]), rv = Tensor.ones([c]);
  // The copy moves as many bytes as the forward: 12 bytes per element = 1.5 n floats.
  const copyN = Math.ceil(1.5 * n);
  const copyIn = Tensor.randn([copyN], { seed: 5 }), copyOut = Tensor.empty([copyN]);

  const forward = () => noGrad(() => batchNorm(x, rm, rv, w, b, { training: true }).dispose());
  const forwardBackward = () => {
    tidy(() => batchNorm(x, rm, rv, w, b, { training: true }).backward(dout));
    for (const t of [x, w, b]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };

  // Validate once, before timing.
  const xr = refArray(await x.toArray(), shape);
  const wr = await w.toArray(), br = await b.toArray();
  const ref = refBatchNormForward(xr, wr, br, 1e-5);
  const grads = refBatchNormBackward(refArray(await dout.toArray(), shape), xr, wr, 1e-5);
  const y = batchNorm(x, rm, rv, w, b, { training: true });
  y.backward(dout);
  assertClose(await y.toArray(), ref.out.data, { atol: 1e-4, rtol: 1e-4 }, `${group} out`);
  const dxScale = Math.max(...ref.rstd.map((r, i) => r * Math.abs(wr[i])));
  assertClose(await x.grad!.toArray(), grads.dinp.data, { atol: 1e-4 * dxScale, rtol: 0 }, "dx");
  forwardBackward();
  copy(copyIn, copyOut, copyN);
  assertClose(await copyOut.toArray(), await copyIn.toArray(), { atol: 0, rtol: 0 }, "copy");
  y.dispose();

  const big = n > BIG;
  const cpuOpts = big ? { n: 1, warmup: 0 } : { n: 3, warmup: 1 };
  const gpuOpts = big ? { n: 3, warmup: 1 } : { n: 10, warmup: 2 };
  Deno.bench({
    name: "CPU float64 reference, train forward",
    group,
    baseline: true,
    ...cpuOpts,
    fn: timed(`${group}|cpu fwd`, 12 * n, 1, () => {
      refBatchNormForward(xr, wr, br, 1e-5); // batch statistics, then the normalization
    }),
  });
  Deno.bench({
    name: `WGSL train forward (x${ITERS} + sync)`,
    group,
    ...gpuOpts,
    fn: timed(`${group}|wgsl fwd`, 12 * n, ITERS, async () => {
      for (let i = 0; i < ITERS; i++) forward();
      await sync();
    }),
  });
  Deno.bench({
    name: `WGSL train forward+backward (x${ITERS} + sync)`,
    group,
    ...gpuOpts,
    fn: timed(`${group}|wgsl fwd+bwd`, 32 * n, ITERS, async () => {
      for (let i = 0; i < ITERS; i++) forwardBackward();
      await sync();
    }),
  });
  Deno.bench({
    name: `WGSL vec4 copy, forward's bytes (x${ITERS} + sync)`,
    group,
    ...gpuOpts,
    fn: timed(`${group}|copy`, 8 * copyN, ITERS, async () => {
      for (let i = 0; i < ITERS; i++) copy(copyIn, copyOut, copyN);
      await sync();
    }),
  });
}

const adapter = (await adapterInfo()).description;
globalThis.addEventListener("unload", () => {
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  console.log(`\nbatch norm, ms per op (median) and GB/s, on ${adapter}`);
  console.log("shape              | what        |     ms/op |   GB/s | vs copy");
  for (const shape of SHAPES) {
    const group = `[${shape.join(", ")}]`;
    const copyEntry = times.get(`${group}|copy`);
    const copyGbs = copyEntry ? copyEntry.bytes / median(copyEntry.ms) / 1e6 : NaN;
    for (const what of ["cpu fwd", "wgsl fwd", "wgsl fwd+bwd", "copy"]) {
      const e = times.get(`${group}|${what}`);
      if (!e) continue;
      const ms = median(e.ms);
      const gbs = e.bytes / ms / 1e6;
      console.log(
        `${group.padEnd(18)} | ${what.padEnd(11)} | ${ms.toFixed(3).padStart(9)} | ` +
          `${gbs.toFixed(2).padStart(6)} | ${(gbs / copyGbs).toFixed(2).padStart(7)}`,
      );
    }
  }
});
