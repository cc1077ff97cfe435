/**
 * Batch norm, training mode, side by side with what it is measured against: LayerNorm on
 * the same tensor (the issue's yardstick: BatchNorm no slower than 1.5x LayerNorm), a
 * plain vec4 copy moving the same bytes (the adapter's bandwidth), and the float64 CPU
 * reference (the `Deno.bench` baseline). It also times the fused BatchNorm+sigmoid against
 * BatchNorm followed by a separate sigmoid, the pair LeNet runs after every convolution.
 *
 * Every case is validated against the float64 reference before it is timed. Each GPU
 * timing encodes REPS repetitions and waits once (one host wait costs ~11 ms on
 * llvmpipe), and the table repeats every row ROUNDS times, interleaved, printing the
 * median and the spread (min-max), since the machine is shared. Bytes each op must move:
 * forward 12 per element (x read for the statistics, read again and out written),
 * forward+backward 32 (adding x and dout read for the sums, then x and dout read and dinp
 * written); LayerNorm is charged the same bytes, so "vs LN" is a plain time ratio.
 *
 * Run: `deno run -A bench/ops/batch_norm_bench.ts` (the table), or
 * `deno bench -A bench/ops/batch_norm_bench.ts` (the table, then Deno.bench groups).
 *
 * @module
 */
import { adapterInfo, getDevice } from "../../src/gpu/device.ts";
import { grid, launch, sync, uniforms } from "../../src/gpu/queue.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { batchNorm } from "../../src/ops/batch_norm/batch_norm.ts";
import { sigmoid } from "../../src/nn/functional.ts";
import { layerNorm } from "../../src/ops/layer_norm/layer_norm.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import {
  refBatchNormActBackward,
  refBatchNormActForward,
  refBatchNormBackward,
  refBatchNormForward,
} from "../../src/ops/batch_norm/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";
import copySrc from "./copy.wgsl" with { type: "text" };

await getDevice();
const REPS = 10;
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
const WG = 256;
const SHAPES = [[256, 6, 24, 24], [256, 16, 8, 8], [256, 120], [256, 84]];

function copy(src: Tensor, dst: Tensor, n: number): void {
  const n4 = Math.ceil(n / 4);
  launch({
    label: "bench.copy",
    code: copySrc,
    overrides: { WG },
    bindings: [uniforms({ n4 }), src.buffer, dst.buffer],
    workgroups: grid(Math.ceil(n4 / WG)),
  });
}

function setup(shape: number[]) {
  const c = shape[1], n = shape.reduce((a, b) => a * b, 1), norm = shape.slice(1);
  const x = Tensor.randn(shape, { seed: 1, requiresGrad: true });
  const dout = Tensor.randn(shape, { seed: 2 });
  const w = Tensor.randn([c], { seed: 3, requiresGrad: true });
  const b = Tensor.randn([c], { seed: 4, requiresGrad: true });
  const lw = Tensor.randn(norm, { seed: 3, requiresGrad: true });
  const lb = Tensor.randn(norm, { seed: 4, requiresGrad: true });
  const rm = Tensor.zeros([c]), rv = Tensor.ones([c]);
  const copyIn = Tensor.randn([4 * n], { seed: 5 }), copyOut = Tensor.empty([4 * n]);
  const clear = () => {
    for (const t of [x, w, b, lw, lb]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  const opts = { training: true } as const;
  const cases: Record<string, () => void> = {
    "bn fwd": () => noGrad(() => batchNorm(x, rm, rv, w, b, opts).dispose()),
    "bn fwd+bwd": () => {
      tidy(() => batchNorm(x, rm, rv, w, b, opts).backward(dout));
      clear();
    },
    "ln fwd": () => noGrad(() => layerNorm(x, norm, lw, lb).dispose()),
    "ln fwd+bwd": () => {
      tidy(() => layerNorm(x, norm, lw, lb).backward(dout));
      clear();
    },
    "copy fwd bytes": () => copy(copyIn, copyOut, 1.5 * n),
    "copy fwd+bwd bytes": () => copy(copyIn, copyOut, 4 * n),
    "bn, sigmoid fwd+bwd": () => {
      tidy(() => sigmoid(batchNorm(x, rm, rv, w, b, opts)).backward(dout));
      clear();
    },
    "bn+sigmoid fused fwd+bwd": () => {
      tidy(() => batchNorm(x, rm, rv, w, b, { ...opts, activation: "sigmoid" }).backward(dout));
      clear();
    },
  };
  return { c, n, x, dout, w, b, rm, rv, cases };
}

/** Checks the GPU's forward and backward (plain and fused) against the float64 reference. */
async function validate(shape: number[], s: ReturnType<typeof setup>): Promise<void> {
  const xr = refArray(await s.x.toArray(), shape);
  const wr = await s.w.toArray(), br = await s.b.toArray();
  const dr = refArray(await s.dout.toArray(), shape);
  for (const act of [undefined, "sigmoid"] as const) {
    const y = batchNorm(s.x, s.rm, s.rv, s.w, s.b, { training: true, activation: act });
    y.backward(s.dout);
    const ref = refBatchNormForward(xr, wr, br, 1e-5);
    const want = act ? refBatchNormActForward(xr, wr, br, 1e-5, act).out : ref.out;
    const g = act
      ? refBatchNormActBackward(dr, xr, wr, br, 1e-5, act)
      : refBatchNormBackward(dr, xr, wr, 1e-5);
    const what = `${JSON.stringify(shape)}${act ? ` +${act}` : ""}`;
    assertClose(await y.toArray(), want.data, { atol: 1e-4, rtol: 1e-4 }, `${what} out`);
    const dxScale = Math.max(...ref.rstd.map((r, i) => r * Math.abs(wr[i])));
    const dx = await s.x.grad!.toArray();
    assertClose(dx, g.dinp.data, { atol: 1e-4 * dxScale, rtol: 0 }, `${what} dinp`);
    for (const t of [y, s.x.grad, s.w.grad, s.b.grad]) t?.dispose();
    s.x.grad = s.w.grad = s.b.grad = null;
  }
}

const setups = SHAPES.map(setup);
for (let i = 0; i < SHAPES.length; i++) await validate(SHAPES[i], setups[i]);

const info = await adapterInfo();
console.log(`batch norm, training mode, on ${info.description}: ms per op, median of ${ROUNDS}`);
console.log(
  "(min-max); GB/s of the bytes each must move; 'of copy' = that GB/s / the copy's; 'vs LN' =",
);
console.log("BatchNorm's time / LayerNorm's time on the same tensor.\n");
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
for (let i = 0; i < SHAPES.length; i++) {
  const s = setups[i];
  const ms: Record<string, number[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, fn] of Object.entries(s.cases)) {
      (ms[k] ??= []).push(await msPerCall(fn, { reps: REPS, trials: 1 }));
    }
  }
  const m = (k: string) => median(ms[k]);
  const spread = (k: string) =>
    `${m(k).toFixed(2).padStart(6)} (${Math.min(...ms[k]).toFixed(2)}-${
      Math.max(...ms[k]).toFixed(2)
    })`;
  const gbs = (bytes: number, k: string) => bytes * s.n / m(k) / 1e6;
  console.log(`[${SHAPES[i].join(", ")}]`);
  for (const [dir, bytes] of [["fwd", 12], ["fwd+bwd", 32]] as const) {
    const copyGbs = gbs(bytes, `copy ${dir} bytes`);
    console.log(
      `  ${dir.padEnd(8)} bn ${spread(`bn ${dir}`)} ms ${
        gbs(bytes, `bn ${dir}`).toFixed(2)
      } GB/s ` +
        `= ${(gbs(bytes, `bn ${dir}`) / copyGbs).toFixed(2)} of copy (${copyGbs.toFixed(2)} GB/s)` +
        ` | ln ${spread(`ln ${dir}`)} ms | vs LN ${(m(`bn ${dir}`) / m(`ln ${dir}`)).toFixed(2)}`,
    );
  }
  console.log(
    `  bn then sigmoid fwd+bwd ${spread("bn, sigmoid fwd+bwd")} ms | fused ${
      spread("bn+sigmoid fused fwd+bwd")
    } ms | fused saves ${
      (100 * (1 - m("bn+sigmoid fused fwd+bwd") / m("bn, sigmoid fwd+bwd"))).toFixed(0)
    }%`,
  );
}

for (let i = 0; i < SHAPES.length; i++) {
  const group = `[${SHAPES[i].join(", ")}]`;
  const s = setups[i];
  const xr = refArray(await s.x.toArray(), SHAPES[i]);
  const wr = await s.w.toArray(), br = await s.b.toArray();
  Deno.bench({
    name: "float64 CPU reference, train forward",
    group,
    baseline: true,
    n: 3,
    warmup: 1,
    fn: () => void refBatchNormForward(xr, wr, br, 1e-5),
  });
  for (const [k, fn] of Object.entries(s.cases)) {
    Deno.bench({
      name: `${k} (x${REPS} + sync)`,
      group,
      n: 10,
      warmup: 2,
      async fn() {
        for (let r = 0; r < REPS; r++) fn();
        await sync();
      },
    });
  }
}
