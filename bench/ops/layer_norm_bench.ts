/**
 * Layer norm at the LeNet shapes (batch 256): forward, and forward + backward, against the
 * float64 reference as baseline. Each GPU case is validated against the reference before
 * it is timed; a table of ms and GB/s is printed first, with the two row layouts side by
 * side (a row per thread, the llvmpipe default, and a 64-thread workgroup per row, a GPU's
 * choice). Run: `deno bench -A bench/ops/layer_norm_bench.ts`.
 *
 * GB/s counts compulsory traffic only: forward reads inp and writes out (8 bytes per
 * element); forward + backward adds reading inp and dout and writing dinp (20 in all).
 * A GPU iteration encodes REPS steps and waits once: a host wait costs ~11 ms on llvmpipe.
 *
 * @module
 */
import { getDevice } from "../../src/gpu/device.ts";
import { sync } from "../../src/gpu/queue.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import {
  layerNorm,
  type LayerNormLayout,
  layerNormLayout,
} from "../../src/ops/layer_norm/layer_norm.ts";
import { refLayerNormBackward, refLayerNormForward } from "../../src/ops/layer_norm/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";

await getDevice();

const REPS = 10;
const SHAPES: [number[], number[]][] = [
  [[256, 6, 24, 24], [6, 24, 24]],
  [[256, 16, 8, 8], [16, 8, 8]],
  [[256, 120], [120]],
  [[256, 84], [84]],
];

function setup(shape: number[], norm: number[], layout?: LayerNormLayout) {
  const x = Tensor.randn(shape, { seed: 1, requiresGrad: true });
  const w = Tensor.randn(norm, { seed: 2, requiresGrad: true });
  const b = Tensor.randn(norm, { seed: 3, requiresGrad: true });
  const dy = Tensor.randn(shape, { seed: 4 });
  const forward = () => noGrad(() => layerNorm(x, norm, w, b, { layout }).dispose());
  const step = () =>
    tidy(() => {
      layerNorm(x, norm, w, b, { layout }).backward(dy);
      for (const t of [x, w, b]) {
        t.grad?.dispose();
        t.grad = null;
      }
    });
  return { x, w, b, dy, forward, step };
}

const gbps = (bytes: number, ms: number) => `${(bytes / ms / 1e6).toFixed(2)} GB/s`;
const LAYOUTS: [string, number, number][] = [["row per thread", 1, 64], [
  "workgroup per row",
  64,
  64,
]];
const rows: string[] = [];
for (const [shape, norm] of SHAPES) {
  const s = setup(shape, norm);
  const D = norm.reduce((a, c) => a * c), M = s.x.numel / D, n = s.x.numel;
  const [x, w, b, dy] = await Promise.all([s.x, s.w, s.b, s.dy].map((t) => t.toArray()));
  let ref = refLayerNormForward(x, w, b, M, D, 1e-5);
  let g = refLayerNormBackward(dy, x, ref.mean, ref.rstd, w, M, D);
  // Timed on a second run, once the JIT has compiled the loops.
  const t0 = performance.now();
  ref = refLayerNormForward(x, w, b, M, D, 1e-5);
  const t1 = performance.now();
  g = refLayerNormBackward(dy, x, ref.mean, ref.rstd, w, M, D);
  const t2 = performance.now();
  rows.push(
    `${JSON.stringify(shape)}  float64 reference: forward ${(t1 - t0).toFixed(2)} ms ${
      gbps(8 * n, t1 - t0)
    } | fwd+bwd ${(t2 - t0).toFixed(2)} ms ${gbps(20 * n, t2 - t0)}`,
  );
  for (const [name, threadsPerRow, workgroupSize] of LAYOUTS) {
    const layout = layerNormLayout(D, { threadsPerRow, workgroupSize });
    const t = setup(shape, norm, layout); // the same seeds: the same data as s
    // validate before timing
    const y = layerNorm(t.x, norm, t.w, t.b, { layout });
    y.backward(t.dy);
    assertClose(await y.toArray(), ref.out, { atol: 1e-4 }, "out");
    assertClose(await t.x.grad!.toArray(), g.dinp, { atol: 1e-4 }, "dinp");
    assertClose(await t.w.grad!.toArray(), g.dweight, { atol: 1e-3 }, "dweight");
    for (const v of [t.x, t.w, t.b, y]) v.grad?.dispose(), v.grad = null;
    y.dispose();
    const f = await msPerCall(t.forward, { reps: REPS, trials: 5 });
    const fb = await msPerCall(t.step, { reps: REPS, trials: 5 });
    rows.push(
      `${" ".repeat(JSON.stringify(shape).length)}  WGSL, ${name}: forward ${f.toFixed(2)} ms ${
        gbps(8 * n, f)
      } | fwd+bwd ${fb.toFixed(2)} ms ${gbps(20 * n, fb)}`,
    );
  }
}
console.log(rows.join("\n"));

for (const [shape, norm] of SHAPES) {
  const group = `layerNorm ${JSON.stringify(shape)} over ${JSON.stringify(norm)}`;
  const s = setup(shape, norm);
  const D = norm.reduce((a, c) => a * c), M = s.x.numel / D;
  const [x, w, b, dy] = await Promise.all([s.x, s.w, s.b, s.dy].map((t) => t.toArray()));
  Deno.bench({
    name: `float64 reference, forward + backward x${REPS}`,
    group,
    baseline: true,
    n: 3,
    warmup: 1,
    fn: () => {
      for (let i = 0; i < REPS; i++) {
        const ref = refLayerNormForward(x, w, b, M, D, 1e-5);
        refLayerNormBackward(dy, x, ref.mean, ref.rstd, w, M, D);
      }
    },
  });
  Deno.bench({
    name: `WGSL forward x${REPS}, one wait`,
    group,
    n: 10,
    warmup: 2,
    fn: async () => {
      for (let i = 0; i < REPS; i++) s.forward();
      await sync();
    },
  });
  Deno.bench({
    name: `WGSL forward + backward x${REPS}, one wait`,
    group,
    n: 10,
    warmup: 2,
    fn: async () => {
      for (let i = 0; i < REPS; i++) s.step();
      await sync();
    },
  });
}
