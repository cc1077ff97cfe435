/**
 * The LeNet convolutions at batch 256 (`conv2d`), the lecture's (LeNet+BN) and the book's
 * plain LeNet, on the adapter's schedule (`convSchedule`), and the lecture's two on the plain
 * schedule too where the adapter's is another: forward, dinp and dweight (+ dbias) each timed
 * alone, beside the best of the matmul kernel (`linear`) on a few shapes in the same run, the
 * yardstick of issue 10 (every convolution pass at >= 60% of the best matmul's GFLOP/s).
 * Every pass is validated against the float64 reference before it is timed; the table
 * interleaves all passes ROUNDS times and prints each one's schedule, best time and its
 * GFLOP/s (2 N O OH OW C KH KW useful FLOP per pass, the same for all three), and its share of
 * the best matmul of the same round, median and range over the rounds (the machine is shared,
 * and its speed drifts within minutes). The float64 reference is the `Deno.bench` baseline.
 * Run: `deno run -A bench/ops/conv2d_bench.ts` (the table) or `deno bench -A ...`.
 *
 * A GPU timing encodes REPS passes and waits once: a host wait costs ~11 ms on llvmpipe,
 * which would otherwise swamp kernels of a few ms.
 *
 * @module
 */
import { adapterInfo, adapterProfile, getDevice } from "../../src/gpu/device.ts";
import { sync } from "../../src/gpu/queue.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import {
  conv2d,
  CONV_PLAIN,
  type ConvSchedule,
  convSchedule,
} from "../../src/ops/conv2d/conv2d.ts";
import { linear } from "../../src/ops/linear/linear.ts";
import {
  type ConvDims,
  refConv2dBackward,
  refConv2dForward,
  refConvOutSize,
} from "../../src/ops/conv2d/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";

await getDevice();

const REPS = 5;
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 5);
const lenet = (c: number, h: number, o: number, pad: number): ConvDims => ({
  n: 256,
  c,
  h,
  w: h,
  o,
  kh: 5,
  kw: 5,
  sh: 1,
  sw: 1,
  ph: pad,
  pw: pad,
});
const chosen = convSchedule(adapterProfile());
const SHAPES: [string, ConvDims, ConvSchedule][] = [
  ["conv1 [256,1,28,28] * [6,1,5,5]", lenet(1, 28, 6, 0), chosen],
  ["conv2 [256,6,12,12] * [16,6,5,5]", lenet(6, 12, 16, 0), chosen],
  ["plain conv1, padding 2", lenet(1, 28, 6, 2), chosen],
  ["plain conv2 [256,6,14,14]", lenet(6, 14, 16, 0), chosen],
];
if (chosen !== CONV_PLAIN) {
  SHAPES.push(
    ["conv1 [256,1,28,28] * [6,1,5,5]", lenet(1, 28, 6, 0), CONV_PLAIN],
    ["conv2 [256,6,12,12] * [16,6,5,5]", lenet(6, 12, 16, 0), CONV_PLAIN],
  );
}
/** The matmul yardstick: linear forward [N, I] x [O, I]^T, 2 N I O FLOP. */
const MATMULS: [number, number, number][] = [[256, 256, 120], [256, 400, 120], [512, 512, 512]];

type Pass = "forward" | "dinp" | "dweight";

function setup(d: ConvDims, schedule: ConvSchedule) {
  const [OH, OW] = refConvOutSize(d);
  const x = Tensor.randn([d.n, d.c, d.h, d.w], { seed: 1 });
  const w = Tensor.randn([d.o, d.c, d.kh, d.kw], { seed: 2 });
  const b = Tensor.randn([d.o], { seed: 3 });
  const dy = Tensor.randn([d.n, d.o, OH, OW], { seed: 4 });
  // Outputs whose backward computes only dinp (only x requires grad) or only dweight/dbias.
  const xg = x.detach();
  xg.requiresGrad = true;
  const wg = w.detach(), bg = b.detach();
  wg.requiresGrad = bg.requiresGrad = true;
  const opts = { padding: [d.ph, d.pw] as [number, number], schedule };
  const outDinp = conv2d(xg, w, b, opts);
  const outDweight = conv2d(x, wg, bg, opts);
  const blocked: Record<Pass, () => void> = {
    forward: () => tidy(() => void conv2d(x, w, b, opts)),
    dinp: () => tidy(() => void outDinp.gradFn!.apply(dy)),
    dweight: () => tidy(() => void outDweight.gradFn!.apply(dy)),
  };
  return { x, w, b, dy, blocked, outDinp, outDweight };
}

// Validate every pass against the float64 reference, then time all of them interleaved.
const timed: { name: string; schedule: string; fn: () => void; flop: number; conv: boolean }[] = [];
for (const [name, d, schedule] of SHAPES) {
  const s = setup(d, schedule);
  const [x, w, b, dy] = await Promise.all([s.x, s.w, s.b, s.dy].map((t) => t.toArray()));
  const [OH, OW] = refConvOutSize(d);
  const flop = 2 * d.n * d.o * OH * OW * d.c * d.kh * d.kw;
  // float32 sums of up to 147456 terms: atol 1e-2 on values ~ 400
  const want = { forward: refConv2dForward(x, w, b, d), ...refConv2dBackward(x, w, dy, d) };
  const tol = { atol: 1e-2, rtol: 1e-4 };
  const pad = { padding: [d.ph, d.pw] as [number, number], schedule };
  const what = `${name} @${schedule.name}`;
  assertClose(await tidy(() => conv2d(s.x, s.w, s.b, pad)).toArray(), want.forward, tol, what);
  const gx = tidy(() => s.outDinp.gradFn!.apply(s.dy)[0]!);
  assertClose(await gx.toArray(), want.dinp, tol, `${what} dinp`);
  const [, gw, gb] = tidy(() => s.outDweight.gradFn!.apply(s.dy));
  assertClose(await gw!.toArray(), want.dweight, tol, `${what} dweight`);
  assertClose(await gb!.toArray(), want.dbias, tol, `${what} dbias`);
  for (const pass of ["forward", "dinp", "dweight"] as Pass[]) {
    timed.push({
      name: `${name} ${pass}`,
      schedule: schedule.name,
      fn: s.blocked[pass],
      flop,
      conv: true,
    });
  }
}
for (const [N, I, O] of MATMULS) {
  const a = Tensor.randn([N, I], { seed: 5 }), w = Tensor.randn([O, I], { seed: 6 });
  const fn = () => tidy(() => void linear(a, w));
  const name = `matmul [${N},${I}]x[${O},${I}]^T`;
  timed.push({ name, schedule: "", fn, flop: 2 * N * I * O, conv: false });
}
// ms[i][r]: entry i in round r. The share of the best matmul is taken per round (the matmuls
// of the same round, seconds apart), then its median over the rounds: this machine's speed
// drifts by up to 2x within minutes, which moves the best-of-rounds figures of different
// entries apart.
const ms = timed.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) {
  for (let i = 0; i < timed.length; i++) {
    ms[i].push(await msPerCall(timed[i].fn, { reps: REPS, trials: 1 }));
  }
}
const rate = (i: number, r: number) => timed[i].flop / ms[i][r] / 1e6; // GFLOP/s
const yardOf = (r: number) => Math.max(...timed.flatMap((t, i) => t.conv ? [] : [rate(i, r)]));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[(a.length - 1) >> 1];
const best = ms.map((m) => Math.min(...m));
const yard = Math.max(...timed.flatMap((t, i) => t.conv ? [] : [t.flop / best[i] / 1e6]));
console.log(
  `convolutions on ${(await adapterInfo()).description}, ${ROUNDS} interleaved rounds: ` +
    `schedule, best time, its GFLOP/s, and the share of the round's best matmul, median ` +
    `(min-max) over the rounds; best matmul ${yard.toFixed(2)} GFLOP/s`,
);
for (let i = 0; i < timed.length; i++) {
  const shares = ms[i].map((_, r) => (100 * rate(i, r)) / yardOf(r));
  const pct = (v: number) => v.toFixed(0);
  console.log(
    `${timed[i].name.padEnd(44)} ${timed[i].schedule.padEnd(8)} ` +
      `${best[i].toFixed(2).padStart(8)} ms ` +
      `${(timed[i].flop / best[i] / 1e6).toFixed(2).padStart(6)} GFLOP/s` +
      (timed[i].conv
        ? ` ${pct(median(shares)).padStart(4)}% (${pct(Math.min(...shares))}-${
          pct(Math.max(...shares))
        }) of the round's best matmul`
        : ""),
  );
}

for (const [name, d, schedule] of SHAPES) {
  const s = setup(d, schedule);
  const [x, w, b, dy] = await Promise.all([s.x, s.w, s.b, s.dy].map((t) => t.toArray()));
  Deno.bench({
    name: "float64 reference, forward + backward",
    group: `${name} @${schedule.name}`,
    baseline: true,
    n: 1,
    warmup: 0,
    fn: () => {
      refConv2dForward(x, w, b, d);
      refConv2dBackward(x, w, dy, d);
    },
  });
  for (const pass of ["forward", "dinp", "dweight"] as Pass[]) {
    Deno.bench({
      name: `GPU ${pass} x${REPS}, one wait`,
      group: `${name} @${schedule.name}`,
      n: 5,
      warmup: 1,
      fn: async () => {
        for (let i = 0; i < REPS; i++) s.blocked[pass]();
        await sync();
      },
    });
  }
}
