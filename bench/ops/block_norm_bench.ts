/**
 * GroupNorm and ghost batch norm (`src/ops/block_norm/`) beside BatchNorm and LayerNorm at
 * the LeNet shapes (batch 256): forward, and forward + backward, in training mode. Each
 * GroupNorm and ghost case is validated against the float64 reference before it is
 * timed; a table of ms, GB/s and the ratio to BatchNorm is printed first, then `Deno.bench`
 * groups (one per shape, BatchNorm the baseline). Run:
 * `deno bench -A bench/ops/block_norm_bench.ts`.
 *
 * GroupNorm uses 2 channels per group after the convolutions (G = 3 and 8) and 8 groups
 * after the Linear layer (15 features each); ghost batch norm uses ghost batches of 32.
 * Where the adapter's schedule differs from the plain one (one row per thread) for the
 * shape's rows, as llvmpipe's does at [256, 120] (S = 1: 16 rows per thread), the block-norm
 * rows are timed with both (`plain`).
 *
 * GB/s counts compulsory traffic only: forward reads inp and writes out (8 bytes per
 * element); forward + backward adds reading inp and dout and writing dinp (20 in all).
 * A GPU iteration encodes REPS steps and waits once: a host wait costs ~11 ms on llvmpipe.
 *
 * @module
 */
import { adapterInfo, getDevice } from "../../src/gpu/device.ts";
import { sync } from "../../src/gpu/queue.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { batchNorm } from "../../src/ops/batch_norm/batch_norm.ts";
import { layerNorm } from "../../src/ops/layer_norm/layer_norm.ts";
import {
  BLOCK_NORM_PLAIN,
  type BlockNormSchedule,
  blockNormSchedule,
  ghostBatchNorm,
  groupNorm,
} from "../../src/ops/block_norm/block_norm.ts";
import { refBlockNormBackward, refBlockNormForward } from "../../src/ops/block_norm/reference.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";

await getDevice();

const REPS = 10;
/** Shapes and GroupNorm's group count for each. */
const SHAPES: [number[], number][] = [
  [[256, 6, 24, 24], 3],
  [[256, 16, 8, 8], 8],
  [[256, 120], 8],
];
const GHOST = 32;

type Layer = "batch" | "layer" | "group" | "ghost";

function setup(shape: number[], groups: number) {
  const c = shape[1];
  const x = Tensor.randn(shape, { seed: 1, requiresGrad: true });
  const w = Tensor.randn([c], { seed: 2, requiresGrad: true });
  const b = Tensor.randn([c], { seed: 3, requiresGrad: true });
  const dy = Tensor.randn(shape, { seed: 4 });
  const rm = Tensor.zeros([c]), rv = Tensor.ones([c]);
  // LayerNorm's elementwise affine map over (C, ...).
  const norm = shape.slice(1);
  const lw = Tensor.randn(norm, { seed: 5, requiresGrad: true });
  const lb = Tensor.randn(norm, { seed: 6, requiresGrad: true });
  const run: Record<Layer, (schedule?: BlockNormSchedule) => Tensor> = {
    batch: () => batchNorm(x, rm, rv, w, b, { training: true }),
    layer: () => layerNorm(x, norm, lw, lb),
    group: (schedule) => groupNorm(x, groups, w, b, { schedule }),
    ghost: (schedule) =>
      ghostBatchNorm(x, rm, rv, w, b, { training: true, virtualBatchSize: GHOST, schedule }),
  };
  const forward = (layer: Layer, schedule?: BlockNormSchedule) => () =>
    noGrad(() => run[layer](schedule).dispose());
  const step = (layer: Layer, schedule?: BlockNormSchedule) => () =>
    tidy(() => {
      run[layer](schedule).backward(dy);
      for (const t of [x, w, b, lw, lb]) {
        t.grad?.dispose();
        t.grad = null;
      }
    });
  return { x, w, b, dy, run, forward, step };
}

/** Checks groupNorm or ghostBatchNorm's out, dinp and dweight against the float64 reference. */
async function validate(s: ReturnType<typeof setup>, layer: "group" | "ghost", groups: number) {
  const shape = [...s.x.shape], c = shape[1];
  const [bn, bc] = layer === "group" ? [1, c / groups] : [GHOST, 1];
  const xr = refArray(await s.x.toArray(), shape), w = await s.w.toArray();
  const ref = refBlockNormForward(xr, bn, bc, w, await s.b.toArray(), 1e-5);
  const g = refBlockNormBackward(refArray(await s.dy.toArray(), shape), xr, bn, bc, w, 1e-5);
  const y = s.run[layer]();
  y.backward(s.dy);
  assertClose(await y.toArray(), ref.out.data, { atol: 1e-4 }, `${layer} out`);
  assertClose(await s.x.grad!.toArray(), g.dinp.data, { atol: 1e-3, rtol: 1e-4 }, `${layer} dinp`);
  assertClose(await s.w.grad!.toArray(), g.dweight, { atol: 1e-2, rtol: 1e-4 }, `${layer} dw`);
  for (const t of [s.x, s.w, s.b]) t.grad?.dispose(), t.grad = null;
  y.dispose();
}

const gbps = (bytes: number, ms: number) => (bytes / ms / 1e6).toFixed(2);
const rows: string[] = [];
for (const [shape, groups] of SHAPES) {
  const s = setup(shape, groups);
  const n = s.x.numel;
  await validate(s, "group", groups);
  await validate(s, "ghost", groups);
  // The plain schedule differs from the adapter's only where their rows per thread differ.
  const rowLength = shape.slice(2).reduce((a, b) => a * b, 1);
  const adapters = blockNormSchedule();
  const differs = adapters.tuning(rowLength).rowsPerThread !==
    BLOCK_NORM_PLAIN.tuning(rowLength).rowsPerThread;
  const plain = (name: string, layer: Layer): [string, Layer, BlockNormSchedule][] =>
    differs ? [[`${name}, plain`, layer, BLOCK_NORM_PLAIN]] : [];
  const cases: [string, Layer, BlockNormSchedule | undefined][] = [
    ["BatchNorm", "batch", undefined],
    ["LayerNorm", "layer", undefined],
    [`GroupNorm G=${groups}`, "group", undefined],
    ...plain(`GroupNorm G=${groups}`, "group"),
    [`ghost BN ${GHOST}`, "ghost", undefined],
    ...plain(`ghost BN ${GHOST}`, "ghost"),
  ];
  let bnF = NaN, bnFB = NaN;
  for (const [name, layer, schedule] of cases) {
    const f = await msPerCall(s.forward(layer, schedule), { reps: REPS, trials: 5 });
    const fb = await msPerCall(s.step(layer, schedule), { reps: REPS, trials: 5 });
    if (layer === "batch") [bnF, bnFB] = [f, fb];
    rows.push(
      `${JSON.stringify(shape).padEnd(16)} ${name.padEnd(26)} fwd ${f.toFixed(2).padStart(6)} ms ` +
        `${gbps(8 * n, f).padStart(5)} GB/s ${(f / bnF).toFixed(2)}x BN | fwd+bwd ` +
        `${fb.toFixed(2).padStart(6)} ms ${gbps(20 * n, fb).padStart(5)} GB/s ${
          (fb / bnFB).toFixed(2)
        }x BN`,
    );
  }
}
console.log(`Training mode, ms per op (best of 5), on ${(await adapterInfo()).description}`);
console.log(rows.join("\n"));

for (const [shape, groups] of SHAPES) {
  const group = `${JSON.stringify(shape)} forward + backward`;
  const s = setup(shape, groups);
  const layers: [string, Layer][] = [
    ["BatchNorm", "batch"],
    ["LayerNorm", "layer"],
    [`GroupNorm G=${groups}`, "group"],
    [`ghost BN ${GHOST}`, "ghost"],
  ];
  for (const [name, layer] of layers) {
    const step = s.step(layer);
    Deno.bench({
      name: `${name} x${REPS}, one wait`,
      group,
      baseline: layer === "batch",
      n: 10,
      warmup: 2,
      fn: async () => {
        for (let i = 0; i < REPS; i++) step();
        await sync();
      },
    });
  }
}
