/**
 * The LeNet convolutions at batch 256 (`conv2d`): forward, dinp and dweight (+ dbias) each
 * timed alone, with the float64 reference (one iteration) as baseline. Each GPU pass is
 * validated against the reference before it is timed; GFLOP/s are printed first
 * (2 N O OH OW C KH KW FLOP per pass), then the ms per LeNet step spent in convolutions.
 * Run: `deno bench -A bench/ops/conv2d_bench.ts`.
 *
 * The naive kernels (one thread per output element) that the blocked ones replaced ran, on
 * the same loaded 2-core llvmpipe machine: conv1 forward 148 ms, conv2 forward 237 ms,
 * dinp 660 ms, dweight 249 ms (0.1-0.3 GFLOP/s); conv1's naive dweight could not run at
 * all (llvmpipe ends loops after 65535 iterations; it needs 147456). They were deleted
 * once the blocked kernels were validated and faster (git history: conv2d_naive.wgsl).
 *
 * A GPU iteration encodes REPS passes and waits once: a host wait costs ~11 ms on
 * llvmpipe, which would otherwise swamp kernels of a few ms.
 *
 * @module
 */
import { getDevice } from "../../src/gpu/device.ts";
import { sync } from "../../src/gpu/queue.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { conv2d } from "../../src/ops/conv2d/conv2d.ts";
import {
  conv2dBackward,
  conv2dForward,
  type ConvDims,
  convOutSize,
} from "../../src/ops/conv2d/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";

await getDevice();

const REPS = 5;
const SHAPES: [string, ConvDims][] = [
  ["conv1 [256,1,28,28] * [6,1,5,5]", {
    n: 256,
    c: 1,
    h: 28,
    w: 28,
    o: 6,
    kh: 5,
    kw: 5,
    sh: 1,
    sw: 1,
    ph: 0,
    pw: 0,
  }],
  ["conv2 [256,6,12,12] * [16,6,5,5]", {
    n: 256,
    c: 6,
    h: 12,
    w: 12,
    o: 16,
    kh: 5,
    kw: 5,
    sh: 1,
    sw: 1,
    ph: 0,
    pw: 0,
  }],
];

type Pass = "forward" | "dinp" | "dweight";

function setup(d: ConvDims) {
  const [OH, OW] = convOutSize(d);
  const x = Tensor.randn([d.n, d.c, d.h, d.w], { seed: 1 });
  const w = Tensor.randn([d.o, d.c, d.kh, d.kw], { seed: 2 });
  const b = Tensor.randn([d.o], { seed: 3 });
  const dy = Tensor.randn([d.n, d.o, OH, OW], { seed: 4 });
  // Outputs whose backward computes only dinp (only x requires grad) or only dweight/dbias.
  const xg = x.detach();
  xg.requiresGrad = true;
  const wg = w.detach(), bg = b.detach();
  wg.requiresGrad = bg.requiresGrad = true;
  const outDinp = conv2d(xg, w, b);
  const outDweight = conv2d(x, wg, bg);
  const blocked: Record<Pass, () => void> = {
    forward: () => tidy(() => void conv2d(x, w, b)),
    dinp: () => tidy(() => void outDinp.gradFn!.apply(dy)),
    dweight: () => tidy(() => void outDweight.gradFn!.apply(dy)),
  };
  return { x, w, b, dy, blocked, outDinp, outDweight };
}

const rows: string[] = [];
let stepMs = 0;
for (const [name, d] of SHAPES) {
  const s = setup(d);
  const [x, w, b, dy] = await Promise.all([s.x, s.w, s.b, s.dy].map((t) => t.toArray()));
  const [OH, OW] = convOutSize(d);
  const flop = 2 * d.n * d.o * OH * OW * d.c * d.kh * d.kw;
  // validate before timing (float32 sums of up to 147456 terms: atol 1e-2 on values ~ 400)
  const t0 = performance.now();
  const want = { forward: conv2dForward(x, w, b, d), ...conv2dBackward(x, w, dy, d) };
  const refMs = performance.now() - t0;
  const tol = { atol: 1e-2, rtol: 1e-4 };
  assertClose(await tidy(() => conv2d(s.x, s.w, s.b)).toArray(), want.forward, tol, "forward");
  const gx = tidy(() => s.outDinp.gradFn!.apply(s.dy)[0]!);
  assertClose(await gx.toArray(), want.dinp, tol, "dinp");
  const [, gw, gb] = tidy(() => s.outDweight.gradFn!.apply(s.dy));
  assertClose(await gw!.toArray(), want.dweight, tol, "dweight");
  assertClose(await gb!.toArray(), want.dbias, tol, "dbias");
  const cells: string[] = [];
  for (const pass of ["forward", "dinp", "dweight"] as Pass[]) {
    const fast = await msPerCall(s.blocked[pass], { reps: REPS });
    if (!(name.startsWith("conv1") && pass === "dinp")) stepMs += fast; // LeNet needs no dinp of conv1
    cells.push(
      `${pass} ${fast.toFixed(2)} ms ${(flop / fast / 1e6).toFixed(2)} GFLOP/s`,
    );
  }
  rows.push(
    `${name}: ${cells.join(" | ")} | float64 reference fwd+bwd ${refMs.toFixed(0)} ms ${
      (3 * flop / refMs / 1e6).toFixed(2)
    } GFLOP/s`,
  );
}
console.log(rows.join("\n"));
console.log(
  `LeNet step, convolutions only (conv1 forward + dweight, conv2 forward + dinp + dweight): ${
    stepMs.toFixed(1)
  } ms`,
);

for (const [name, d] of SHAPES) {
  const s = setup(d);
  const [x, w, b, dy] = await Promise.all([s.x, s.w, s.b, s.dy].map((t) => t.toArray()));
  Deno.bench({
    name: "float64 reference, forward + backward",
    group: name,
    baseline: true,
    n: 1,
    warmup: 0,
    fn: () => {
      conv2dForward(x, w, b, d);
      conv2dBackward(x, w, dy, d);
    },
  });
  for (const pass of ["forward", "dinp", "dweight"] as Pass[]) {
    Deno.bench({
      name: `GPU ${pass} x${REPS}, one wait`,
      group: name,
      n: 5,
      warmup: 1,
      fn: async () => {
        for (let i = 0; i < REPS; i++) s.blocked[pass]();
        await sync();
      },
    });
  }
}
