/**
 * The LeNet convolutions at batch 256 (`conv2d`): forward, dinp and dweight (+ dbias) each
 * timed alone, blocked kernels against the naive ones (one thread per output element) and
 * the float64 reference (one iteration) as baseline. Each GPU kernel is validated against
 * the reference before it is timed; GFLOP/s are printed first (2 N O OH OW C KH KW FLOP
 * per pass), then the ms per LeNet step spent in convolutions. Run:
 * `deno bench -A bench/ops/conv2d_bench.ts`.
 *
 * A GPU iteration encodes REPS passes and waits once: a host wait costs ~11 ms on
 * llvmpipe, which would otherwise swamp kernels of a few ms.
 *
 * @module
 */
import { getDevice } from "../../src/gpu/device.ts";
import { grid, launch, Params, sync } from "../../src/gpu/queue.ts";
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
import naiveSrc from "../../src/ops/conv2d/conv2d_naive.wgsl" with { type: "text" };
import src from "../../src/ops/conv2d/conv2d.wgsl" with { type: "text" };

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
    dinp: () => tidy(() => void outDinp.backwardFn!(dy)),
    dweight: () => tidy(() => void outDweight.backwardFn!(dy)),
  };
  const p = (total: number) =>
    new Params()
      .u32(d.n).u32(d.c).u32(d.h).u32(d.w).u32(d.o).u32(OH).u32(OW).u32(d.kh)
      .u32(d.kw).u32(d.sh).u32(d.sw).u32(0).i32(d.ph).i32(d.pw).u32(0).u32(total)
      .u32(0).u32(0).u32(0).u32(0);
  const naiveKernel = (entry: string, code: string, a: Tensor, bb: Tensor, shape: number[]) => {
    const res = Tensor.empty(shape);
    const total = res.size;
    launch({
      label: `conv2d naive ${entry}`,
      code,
      entryPoint: entry,
      overrides: { WG: 64 },
      bindings: [p(total), a.buffer, bb.buffer, res.buffer],
      workgroups: grid(Math.ceil(total / 64)),
    });
    return res;
  };
  const naive: Record<Pass, () => Tensor> = {
    forward: () => naiveKernel("forward_naive", naiveSrc, x, w, [d.n, d.o, OH, OW]),
    // the general gather kernel (used for strides > 1) is the naive dinp
    dinp: () => naiveKernel("backward_inp", src, dy, w, [d.n, d.c, d.h, d.w]),
    dweight: () => naiveKernel("backward_weight_naive", naiveSrc, x, dy, [d.o, d.c, d.kh, d.kw]),
  };
  return { x, w, b, dy, blocked, naive, outDinp, outDweight };
}

/** Milliseconds per call of `fn`: REPS calls and one wait, minus the cost of a bare wait. */
async function msPerCall(fn: () => void): Promise<number> {
  let best = Infinity;
  for (let t = 0; t < 3; t++) {
    const t0 = performance.now();
    for (let i = 0; i < REPS; i++) fn();
    await sync();
    const t1 = performance.now();
    await sync();
    best = Math.min(best, (t1 - t0 - (performance.now() - t1)) / REPS);
  }
  return best;
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
  const gx = tidy(() => s.outDinp.backwardFn!(s.dy)[0]!);
  assertClose(await gx.toArray(), want.dinp, tol, "dinp");
  const [, gw, gb] = tidy(() => s.outDweight.backwardFn!(s.dy));
  assertClose(await gw!.toArray(), want.dweight, tol, "dweight");
  assertClose(await gb!.toArray(), want.dbias, tol, "dbias");
  const naiveWant = { forward: want.forward, dinp: want.dinp, dweight: want.dweight };
  // The naive dweight sums N*OH*OW terms in one loop; llvmpipe ends loops after 65535
  // iterations, so it cannot compute conv1's (147456) there.
  const naiveOk = (pass: Pass) => pass !== "dweight" || d.n * OH * OW <= 65535;
  for (const pass of ["forward", "dinp", "dweight"] as Pass[]) {
    if (!naiveOk(pass)) continue;
    const t = s.naive[pass]();
    const got = await t.toArray();
    const wantPass = naiveWant[pass];
    // the naive forward has no bias
    const ref = pass === "forward" ? conv2dForward(x, w, null, d) : wantPass;
    assertClose(got, ref, tol, `naive ${pass}`);
    t.dispose();
  }
  const cells: string[] = [];
  for (const pass of ["forward", "dinp", "dweight"] as Pass[]) {
    const fast = await msPerCall(s.blocked[pass]);
    const slow = naiveOk(pass) ? await msPerCall(() => s.naive[pass]().dispose()) : NaN;
    if (!(name.startsWith("conv1") && pass === "dinp")) stepMs += fast; // LeNet needs no dinp of conv1
    cells.push(
      `${pass} ${fast.toFixed(2)} ms ${(flop / fast / 1e6).toFixed(2)} GFLOP/s (naive ${
        slow.toFixed(2)
      } ms ${(flop / slow / 1e6).toFixed(2)})`,
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
    for (const kind of ["blocked", "naive"] as const) {
      Deno.bench({
        name: `GPU ${kind} ${pass} x${REPS}, one wait`,
        group: name,
        n: 5,
        warmup: 1,
        fn: async () => {
          for (let i = 0; i < REPS; i++) {
            if (kind === "blocked") s.blocked[pass]();
            else s.naive[pass]().dispose();
          }
          await sync();
        },
      });
    }
  }
}
