import { ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { queueStats, sync } from "../../src/gpu/queue.ts";
import { adapterProfile } from "../../src/gpu/device.ts";
import {
  BATCH_NORM_PLAIN,
  BATCH_NORM_SCHEDULES,
  batchNorm,
  batchNormLayout,
  batchNormMaxPool2d,
  type BatchNormSchedule,
  batchNormSchedule,
  type BatchNormTuning,
  launchBatchNormBackward,
  launchBatchStats,
  launchEvalStats,
  launchNormalize,
} from "../../src/ops/batch_norm/batch_norm.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import {
  type RefActivation,
  refBatchNormActBackward,
  refBatchNormActForward,
  refBatchNormBackward,
  refBatchNormForward,
  refBatchStats,
  refRunningUpdate,
  type RefStats,
} from "../../src/ops/batch_norm/reference.ts";
import { centralDiff } from "../central_diff.ts";
import { POOL_SCHEDULES, type PoolSchedule } from "../../src/ops/pool/pool.ts";
import { refMaxPool2dBackward, refMaxPool2dForward } from "../../src/ops/pool/reference.ts";

const EPS = 1e-5;

/** [N, C, S] sizes of a shape. */
function ncs(shape: readonly number[]): [number, number, number] {
  return [shape[0], shape[1], shape.slice(2).reduce((a, b) => a * b, 1)];
}

/** Deterministic pseudo-random doubles (a tiny LCG), for the float64-only tests. */
function lcg(seed: number, n: number, scale = 1, shift = 0): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return shift + scale * (s / 2 ** 32 - 0.5) * 2;
  });
}

/** Running statistics that are not the batch's: means in [-1, 1], variances in [0.5, 2.5]. */
function someStats(c: number, seed: number): RefStats {
  return { mean: lcg(seed, c), var: lcg(seed + 1, c, 1, 1.5) };
}

// ---------------------------------------------------------------------------------------
// The float64 reference on its own: its backward against central differences.

function centralDifferenceCheck(shape: number[], eval_: boolean, act?: RefActivation): void {
  const [, C] = shape;
  const n = shape.reduce((a, b) => a * b, 1);
  const inp = refArray(lcg(1, n, 2, 0.5), shape);
  const weight = lcg(2, C, 1, 0.2), bias = lcg(3, C);
  const r = lcg(4, n); // loss = sum(out * r), so dout = r
  const stats = eval_ ? someStats(C, 5) : undefined;
  const loss = (x: Float64Array, w: Float64Array, b: Float64Array) => {
    const out = act
      ? refBatchNormActForward(refArray(x, shape), w, b, EPS, act, stats).out.data
      : refBatchNormForward(refArray(x, shape), w, b, EPS, stats).out.data;
    return out.reduce((acc, v, i) => acc + v * r[i], 0);
  };
  const h = 1e-6;
  const numeric = (arr: Float64Array) => centralDiff(arr, () => loss(inp.data, weight, bias), h);
  const g = act
    ? refBatchNormActBackward(refArray(r, shape), inp, weight, bias, EPS, act, stats)
    : refBatchNormBackward(refArray(r, shape), inp, weight, EPS, stats);
  const tol = { atol: 1e-6, rtol: 1e-6 };
  assertClose(g.dinp.data, numeric(inp.data), tol, "dinp");
  assertClose(g.dweight, numeric(weight), tol, "dweight");
  assertClose(g.dbias, numeric(bias), tol, "dbias");
}

Deno.test("reference backward matches central differences (training)", () => {
  centralDifferenceCheck([3, 2, 5], false);
  centralDifferenceCheck([4, 3], false);
  centralDifferenceCheck([2, 3, 2, 3], false);
});

Deno.test("reference backward matches central differences (eval)", () => {
  centralDifferenceCheck([3, 2, 5], true);
  centralDifferenceCheck([1, 3, 2, 2], true);
});

Deno.test("fused activation references match central differences", () => {
  for (const act of ["relu", "sigmoid"] as const) {
    centralDifferenceCheck([3, 2, 5], false, act);
    centralDifferenceCheck([7, 3], false, act);
    centralDifferenceCheck([2, 3, 2, 3], true, act);
  }
});

Deno.test("reference forward gives zero mean and unit variance per channel", () => {
  const shape = [5, 3, 4];
  const inp = refArray(lcg(7, 60, 3, 10), shape);
  const { out } = refBatchNormForward(inp, null, null, 0);
  const { mean, var: v } = refBatchStats(out);
  assertClose(mean, [0, 0, 0], { atol: 1e-12, rtol: 0 }, "mean");
  assertClose(v, [1, 1, 1], { atol: 1e-12, rtol: 0 }, "var");
});

// ---------------------------------------------------------------------------------------
// GPU against the reference.

interface Case {
  shape: number[];
  eval?: boolean;
  affine?: boolean;
  /** Input = shift + randn: shift 1e4 is the stability case. */
  shift?: number;
  /** Tolerance of out, and of dinp relative to each channel's scale |weight| rstd rms(g). */
  atol?: number;
  /** Activation fused after the normalization. */
  act?: RefActivation;
  /** Run the launchers with this layout instead of the adapter's default (via batchNorm). */
  tuning?: BatchNormTuning;
  /** The schedule (default the adapter's). */
  schedule?: BatchNormSchedule;
}

/**
 * Divides each element of a per-element array by its channel's scale, so that channels of
 * very different magnitudes (rstd is large where a channel barely varies) are compared
 * at the precision float32 can give them.
 */
function perChannel(data: ArrayLike<number>, shape: readonly number[], scale: ArrayLike<number>) {
  const [N, C, S] = ncs(shape);
  const out = new Float64Array(data.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let s = 0; s < S; s++) out[(n * C + c) * S + s] = data[(n * C + c) * S + s] / scale[c];
    }
  }
  return out;
}

/** Output and gradients from the GPU: through `batchNorm`, or the launchers with `k.tuning`. */
function runGpu(
  k: Case,
  x: Tensor,
  w: Tensor | null,
  b: Tensor | null,
  rm: Tensor,
  rv: Tensor,
  dout: Tensor,
): { y: Tensor; dinp: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  const training = !k.eval;
  if (!k.tuning) {
    const y = batchNorm(x, rm, rv, w, b, {
      training,
      eps: EPS,
      activation: k.act,
      schedule: k.schedule,
    });
    y.backward(dout);
    return { y, dinp: x.grad!, dweight: w?.grad ?? null, dbias: b?.grad ?? null };
  }
  const l = batchNormLayout(k.shape, k.tuning, k.schedule);
  const C = k.shape[1];
  const stats = Tensor.empty([C, 4]), y = Tensor.empty(k.shape), dinp = Tensor.empty(k.shape);
  const dweight = w ? Tensor.empty([C]) : null, dbias = w ? Tensor.empty([C]) : null;
  const ch = {
    weight: w?.buffer ?? null,
    bias: b?.buffer ?? null,
    runningMean: rm.buffer,
    runningVar: rv.buffer,
  };
  if (training) launchBatchStats(l, x.buffer, stats.buffer, ch, EPS, 0.1);
  else launchEvalStats(l, stats.buffer, ch, EPS);
  launchNormalize(l, x.buffer, stats.buffer, y.buffer, k.act);
  launchBatchNormBackward(
    l,
    {
      inp: x.buffer,
      out: y.buffer,
      dout: dout.buffer,
      stats: stats.buffer,
      weight: w?.buffer ?? null,
      dinp: dinp.buffer,
      dweight: dweight?.buffer ?? null,
      dbias: dbias?.buffer ?? null,
    },
    training,
    k.act,
  );
  stats.dispose();
  return { y, dinp, dweight, dbias };
}

async function checkAgainstReference(k: Case): Promise<void> {
  const { shape, eval: eval_ = false, affine = true, shift = 0, atol = 2e-5, act } = k;
  const [N, C, S] = ncs(shape);
  const what = `${JSON.stringify(shape)}${eval_ ? " eval" : ""}${affine ? "" : " no affine"}` +
    `${act ? ` +${act}` : ""}${k.tuning ? ` ${JSON.stringify(k.tuning)}` : ""}` +
    `${k.schedule ? ` (${k.schedule.name} schedule)` : ""}`;
  const x = Tensor.randn(shape, { seed: 11 }).add(shift);
  x.requiresGrad = true;
  const w = affine ? Tensor.randn([C], { seed: 12, requiresGrad: true }) : null;
  const b = affine ? Tensor.randn([C], { seed: 13, requiresGrad: true }) : null;
  const stats = eval_ ? someStats(C, 14) : undefined;
  const rm = Tensor.from(stats ? stats.mean : new Float64Array(C).fill(0.5), [C]);
  const rv = Tensor.from(stats ? stats.var : new Float64Array(C).fill(2), [C]);
  const dout = Tensor.randn(shape, { seed: 15 });

  const got = runGpu(k, x, w, b, rm, rv, dout);

  const xr = refArray(await x.toArray(), shape);
  const wr = w ? await w.toArray() : null, br = b ? await b.toArray() : null;
  const doutr = refArray(await dout.toArray(), shape);
  const ref = refBatchNormForward(xr, wr, br, EPS, stats);
  const outRef = act ? refBatchNormActForward(xr, wr, br, EPS, act, stats).out : ref.out;
  const grads = act
    ? refBatchNormActBackward(doutr, xr, wr, br, EPS, act, stats)
    : refBatchNormBackward(doutr, xr, wr, EPS, stats);
  // g: the gradient reaching the normalization (dout through the activation's derivative).
  const g = new Float64Array(doutr.data.length);
  for (let i = 0; i < g.length; i++) {
    const y = ref.out.data[i], s = 1 / (1 + Math.exp(-y));
    g[i] = doutr.data[i] * (act === "relu" ? (y > 0 ? 1 : 0) : act === "sigmoid" ? s * (1 - s) : 1);
  }

  assertClose(await got.y.toArray(), outRef.data, { atol, rtol: 1e-5 }, `${what}: out`);

  // dinp relative to each channel's scale |w| rstd rms(g).
  let ms = 0;
  for (const v of g) ms += v * v;
  const rms = Math.sqrt(ms / g.length);
  const scale = ref.rstd.map((r, c) => (wr ? Math.abs(wr[c]) : 1) * r * rms);
  assertClose(
    perChannel(await got.dinp.toArray(), shape, scale),
    perChannel(grads.dinp.data, shape, scale),
    { atol, rtol: 0 },
    `${what}: dinp / (|w| rstd rms(g))`,
  );

  // dweight, dbias: float32 sums of M terms, compared relative to sum |term|. With a large
  // shift, xhat itself carries the float32 mean's rounding (same bound as out).
  const sumAtol = shift ? atol : 1e-5;
  if (got.dweight && got.dbias) {
    const absW = new Float64Array(C), absB = new Float64Array(C);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        for (let s = 0; s < S; s++) {
          const i = (n * C + c) * S + s;
          absB[c] += Math.abs(g[i]);
          absW[c] += Math.abs(g[i] * (xr.data[i] - ref.mean[c]) * ref.rstd[c]);
        }
      }
    }
    const dw = await got.dweight.toArray(), db = await got.dbias.toArray();
    const rel = (a: ArrayLike<number>, s: Float64Array) => Array.from(a, (v, c) => v / s[c]);
    assertClose(rel(dw, absW), rel(grads.dweight, absW), { atol: sumAtol, rtol: 0 }, `${what}: dw`);
    assertClose(rel(db, absB), rel(grads.dbias, absB), { atol: sumAtol, rtol: 0 }, `${what}: db`);
  }

  // Training updates the running statistics in place (momentum 0.1, unbiased variance);
  // eval leaves them alone.
  const start = stats ?? { mean: new Float64Array(C).fill(0.5), var: new Float64Array(C).fill(2) };
  const want = eval_ ? start : refRunningUpdate(start, xr, 0.1);
  const tolRun = { atol: 1e-5 * (1 + Math.abs(shift)), rtol: 1e-5 };
  assertClose(await rm.toArray(), want.mean, tolRun, `${what}: running mean`);
  assertClose(await rv.toArray(), want.var, { atol: 1e-4, rtol: 1e-4 }, `${what}: running var`);
  for (const t of [x, w, b, rm, rv, dout, got.y, got.dinp, got.dweight, got.dbias]) t?.dispose();
}

const shapes: Case[] = [
  // LeNet's four BN layers at batch 1, 2 and 3 (training needs two values per channel:
  // [1, 6, 24, 24] has 576, [1, 120] one, so that one is eval): one block under both schedules,
  // the fused launches
  { shape: [1, 6, 24, 24] },
  { shape: [1, 120], eval: true },
  { shape: [2, 6, 24, 24] },
  { shape: [2, 16, 8, 8] },
  { shape: [2, 120] },
  { shape: [3, 84] },
  { shape: [3, 16, 8, 8], eval: true },
  { shape: [1, 3, 7, 7], eval: true },
  { shape: [3, 5, 7, 7] },
  { shape: [3, 5, 7, 7], eval: true },
  { shape: [2, 513] },
  { shape: [2, 3] },
  { shape: [7, 1] },
  { shape: [256, 120] },
  { shape: [256, 84], eval: true },
  { shape: [4, 3, 11] }, // BatchNorm1d's [N, D, L]
  { shape: [5, 7, 13], affine: false },
  { shape: [2, 3, 3, 5, 1] }, // any rank: S = 15
  { shape: [256, 16, 8, 8] },
  { shape: [256, 6, 24, 24] },
];

// Every shape under every schedule, whichever the adapter would pick.
for (const schedule of BATCH_NORM_SCHEDULES) {
  for (const k of shapes) {
    gpuTest(
      `batchNorm ${JSON.stringify(k.shape)}${
        k.eval ? " eval" : ""
      } matches the reference (${schedule.name} schedule)`,
      () => checkAgainstReference({ ...k, schedule }),
    );
  }
}

// The fused activation, through batchNorm: every layout (rows of vec4s, rows of floats,
// columns), training and eval.
const fused: Case[] = [
  { shape: [256, 6, 24, 24], act: "sigmoid" },
  { shape: [3, 5, 7, 7], act: "relu" },
  { shape: [3, 5, 7, 7], act: "sigmoid", eval: true },
  { shape: [256, 120], act: "sigmoid" },
  { shape: [13, 8], act: "relu", eval: true },
  { shape: [2, 513], act: "relu" },
  { shape: [5, 7, 13], act: "sigmoid", affine: false },
];
for (const schedule of BATCH_NORM_SCHEDULES) {
  for (const k of fused) {
    gpuTest(
      `batchNorm+${k.act} ${JSON.stringify(k.shape)}${
        k.eval ? " eval" : ""
      } matches the reference (${schedule.name} schedule)`,
      () => checkAgainstReference({ ...k, schedule }),
    );
  }
}

// Layouts of several threads per unit (a barrier tree), and blocks of several examples, on
// odd and prime shapes: every branch of the walk is exercised here.
const tuned: Case[] = [
  { shape: [7, 3, 4, 4], tuning: { threadsPerUnit: 4, examplesPerBlock: 3, workgroupSize: 16 } },
  { shape: [5, 3, 7, 7], tuning: { threadsPerUnit: 8, examplesPerBlock: 2 } },
  { shape: [3, 307], tuning: { threadsPerUnit: 2, examplesPerBlock: 2, workgroupSize: 4 } },
  { shape: [513, 8], tuning: { threadsPerUnit: 4, examplesPerBlock: 5 }, act: "relu" },
  { shape: [513, 8], tuning: { threadsPerUnit: 64, examplesPerBlock: 513 }, eval: true },
  { shape: [1, 3, 7, 7], tuning: { threadsPerUnit: 32 }, eval: true, act: "sigmoid" },
  { shape: [3, 5, 1, 6], tuning: { threadsPerUnit: 1, examplesPerBlock: 2 } },
  { shape: [16, 3, 9, 9], tuning: { threadsPerUnit: 16 }, shift: 1e4, atol: 2e-3 },
];
for (const k of tuned) {
  gpuTest(
    `batchNorm launchers ${JSON.stringify(k.shape)} ${
      JSON.stringify(k.tuning)
    } match the reference`,
    () => checkAgainstReference(k),
  );
}

gpuTest("batchNorm layouts: rows of vec4s, rows of floats, columns", () => {
  const cases: [number[], boolean, boolean, number][] = [
    // shape, columns, vec, items per example
    [[256, 6, 24, 24], false, true, 144],
    [[256, 16, 8, 8], false, true, 16],
    [[256, 120], true, true, 1],
    [[3, 5, 7, 7], false, false, 49],
    [[2, 513], false, false, 1],
  ];
  for (const [shape, columns, vec, seg] of cases) {
    const l = batchNormLayout(shape);
    ok(
      l.columns === columns && l.vec === vec && l.seg === seg,
      `${JSON.stringify(shape)}: got ${JSON.stringify(l)}`,
    );
    ok(l.blocks * l.nb >= shape[0] && (l.blocks - 1) * l.nb < shape[0], "blocks cover N");
  }
  throws(() => batchNormLayout([4, 4], { threadsPerUnit: 3 }), /power of two/);
});

gpuTest("batchNorm's schedules: the adapter's by default, plain where nobody measured", () => {
  const measured = adapterProfile().measured;
  ok(batchNormSchedule().name === (measured === "llvmpipe" ? "llvmpipe" : "plain"));
  ok(batchNormSchedule({ ...adapterProfile(), measured: null }) === BATCH_NORM_PLAIN);
  // plain: one workgroup per channel, its threads striding over all N examples
  const plain = batchNormLayout([256, 6, 24, 24], {}, BATCH_NORM_PLAIN);
  ok(plain.units === 6 && plain.nb === 256 && plain.tpr === 64 && plain.wg === 64);
  const small = batchNormLayout([2, 3], {}, BATCH_NORM_PLAIN); // 2 values per channel
  ok(small.units === 3 && small.tpr === 2, JSON.stringify(small));
  // a unit's loop stays below MAX_LOOP: more threads where one would need more
  const long = batchNormLayout([1, 1, 4 * 16384 * 3], { threadsPerUnit: 1 }, BATCH_NORM_PLAIN);
  ok(long.tpr === 4, `3 x 16384 vec4s take 4 threads, got ${long.tpr}`);
  for (const s of BATCH_NORM_SCHEDULES) {
    ok(batchNormLayout([4, 3], {}, s).schedule === s.name, "the layout names its schedule");
  }
});

// A channel whose mean is 1e4 and std 1: E[x^2] - E[x]^2 in float32 subtracts two numbers
// near 1e8 whose spacing is 8, and loses the variance entirely. The reference reads the same
// float32 input, so what is left is the float32 mean itself: within half an ulp of 1e4
// (4.9e-4) when it is rounded once, as the kernels do (merging means relative to a shared
// shift), so xhat is off by ~5e-4 at most. Without affine parameters the tolerance is xhat's.
gpuTest("batchNorm is stable for mean 1e4, std 1 (forward and backward)", async () => {
  await checkAgainstReference({ shape: [16, 3, 9, 9], shift: 1e4, affine: false, atol: 6e-4 });
  await checkAgainstReference({ shape: [512, 7], shift: 1e4, affine: false, atol: 6e-4 });
  await checkAgainstReference({ shape: [512, 8], shift: 1e4, affine: false, atol: 6e-4 }); // columns
  await checkAgainstReference({ shape: [16, 3, 9, 9], shift: 1e4, atol: 2e-3 }); // with affine
  // ...where the naive one-pass formula in float32 is wrong by far more than that.
  const x = await Tensor.randn([16 * 81], { seed: 11 }).add(1e4).toArray();
  let s = 0, sq = 0;
  for (const v of x) {
    s = Math.fround(s + v);
    sq = Math.fround(sq + Math.fround(v * v));
  }
  const naive = Math.fround(sq / x.length) - Math.fround(s / x.length) ** 2;
  const exact = refBatchStats(refArray(x, [x.length, 1])).var[0];
  ok(Math.abs(naive - exact) > 0.1, `naive float32 variance ${naive} vs ${exact}`);
});

gpuTest(
  "batchNorm running statistics and batch count after three steps, momentum 0.1 and null",
  async () => {
    // [4, 3, 5, 5] makes one block under both schedules (the fused launches); [256, 6, 24, 24]
    // several under llvmpipe's (stats_finalize, which counts with a momentum, count_batch without)
    for (const shape of [[4, 3, 5, 5], [256, 6, 24, 24]]) {
      const c = shape[1];
      for (const schedule of BATCH_NORM_SCHEDULES) {
        for (const cumulative of [false, true]) {
          const rm = Tensor.zeros([c]), rv = Tensor.ones([c]), count = Tensor.zeros([]);
          let want: RefStats = { mean: new Float64Array(c), var: new Float64Array(c).fill(1) };
          for (let k = 1; k <= 3; k++) {
            const x = Tensor.randn(shape, { seed: 100 + k }).mul(k).add(k);
            const momentum = cumulative ? null : 0.1;
            batchNorm(x, rm, rv, null, null, {
              training: true,
              momentum,
              numBatchesTracked: count,
              schedule,
            }).dispose();
            want = refRunningUpdate(want, refArray(await x.toArray(), shape), momentum ?? 1 / k);
          }
          const what = `${JSON.stringify(shape)} ${cumulative ? "cumulative" : "momentum 0.1"} ` +
            `(${schedule.name} schedule)`;
          assertClose(await rm.toArray(), want.mean, { atol: 1e-5, rtol: 1e-5 }, `${what} mean`);
          assertClose(await rv.toArray(), want.var, { atol: 1e-4, rtol: 1e-5 }, `${what} var`);
          ok((await count.item()) === 3, `${what}: numBatchesTracked ${await count.item()}, not 3`);
        }
      }
    }
  },
);

gpuTest("batchNorm with one block: one launch forward, one backward", async () => {
  await sync(); // nothing pending before counting
  const x = Tensor.randn([2, 6, 24, 24], { seed: 3, requiresGrad: true });
  const w = Tensor.ones([6], { requiresGrad: true }), b = Tensor.zeros([6], { requiresGrad: true });
  const rm = Tensor.zeros([6]), rv = Tensor.ones([6]), count = Tensor.zeros([]);
  const g = Tensor.randn([2, 6, 24, 24], { seed: 4 });
  await sync();
  for (const schedule of BATCH_NORM_SCHEDULES) {
    ok(batchNormLayout(x.shape, {}, schedule).blocks === 1, `${schedule.name}: one block`);
    const l0 = queueStats().pendingLaunches;
    const opts = { training: true, numBatchesTracked: count, schedule } as const;
    const y = batchNorm(x, rm, rv, w, b, opts);
    const l1 = queueStats().pendingLaunches;
    ok(l1 - l0 === 1, `${schedule.name}: forward made ${l1 - l0} launches, not 1`);
    y.backward(g);
    const l2 = queueStats().pendingLaunches;
    ok(l2 - l1 === 1, `${schedule.name}: backward made ${l2 - l1} launches, not 1`);
    for (const t of [y, x.grad, w.grad, b.grad]) t?.dispose();
    x.grad = w.grad = b.grad = null;
  }
});

gpuTest("batchNorm training step runs without a host wait", () => {
  const x = Tensor.randn([8, 4, 6, 6], { seed: 3, requiresGrad: true });
  const w = Tensor.ones([4], { requiresGrad: true }), b = Tensor.zeros([4], { requiresGrad: true });
  const rm = Tensor.zeros([4]), rv = Tensor.ones([4]);
  const before = queueStats().submits;
  batchNorm(x, rm, rv, w, b, { training: true }).sum().backward();
  ok(queueStats().submits === before, "forward + backward submitted work (a host wait?)");
});

gpuTest("batchNorm with only one of weight and bias", async () => {
  const shape = [6, 2, 3];
  const x = Tensor.randn(shape, { seed: 21 });
  const w = Tensor.from([2, -1], { shape: [2], requiresGrad: true });
  const b = Tensor.from([0.5, 3], { shape: [2], requiresGrad: true });
  const xr = refArray(await x.toArray(), shape);
  const y1 = batchNorm(x, null, null, w, null, { training: true });
  const y2 = batchNorm(x, null, null, null, b, { training: true });
  const tol = { atol: 2e-5, rtol: 1e-5 };
  assertClose(await y1.toArray(), refBatchNormForward(xr, [2, -1], null, EPS).out.data, tol, "w");
  assertClose(await y2.toArray(), refBatchNormForward(xr, null, [0.5, 3], EPS).out.data, tol, "b");
  y2.sum().backward();
  assertClose(await b.grad!.toArray(), [18, 18], tol, "dbias = sum of ones");
});

gpuTest("batchNorm errors name the bad value and the fix", () => {
  const rm = Tensor.zeros([4]), rv = Tensor.ones([4]);
  throws(
    () => batchNorm(Tensor.zeros([1, 4]), rm, rv, null, null, { training: true }),
    { message: "Expected more than 1 value per channel when training, got input size [1, 4]" },
  );
  throws(
    () => batchNorm(Tensor.zeros([4]), rm, rv),
    { message: "batchNorm expects input with at least 2 dimensions [N, C, ...], got [4]" },
  );
  throws(
    () => batchNorm(Tensor.zeros([2, 3]), rm, rv),
    /runningMean must have shape \[3\] \(one value per channel of input \[2, 3\]\), got \[4\]/,
  );
  throws(() => batchNorm(Tensor.zeros([2, 4]), null, null), /needs runningMean and runningVar/);
});

// ---------------------------------------------------------------------------------------
// batchNormMaxPool2d: batch norm, its activation and 2x2 max pooling, against the float64
// references composed (forward: batch norm with the activation, then the pool; backward:
// the pooled gradient routed by the pool's indices, then batch norm's backward through the
// activation), under every batch-norm and pool schedule: the fused pass where the pool has
// its kernel (W % 4 == 0, llvmpipe's pool schedule), the two ops elsewhere.

interface NormPoolCase {
  shape: [number, number, number, number];
  act?: RefActivation;
  eval?: boolean;
  /** Whether the fused pass runs under llvmpipe's pool schedule (else the two ops). */
  fused: boolean;
}

async function checkNormPool(
  k: NormPoolCase,
  schedule: BatchNormSchedule,
  poolSchedule: PoolSchedule,
): Promise<void> {
  const { shape, act, eval: eval_ = false } = k;
  const [N, C, H, W] = shape;
  const what = `${JSON.stringify(shape)}${act ? ` +${act}` : ""}${eval_ ? " eval" : ""} ` +
    `(${schedule.name} batch norm, ${poolSchedule.name} pool)`;
  const x = Tensor.randn(shape, { seed: 21, requiresGrad: true });
  const w = Tensor.randn([C], { seed: 22, requiresGrad: true });
  const b = Tensor.randn([C], { seed: 23, requiresGrad: true });
  const stats = eval_ ? someStats(C, 24) : undefined;
  const rm = Tensor.from(stats ? stats.mean : new Float64Array(C).fill(0.5), [C]);
  const rv = Tensor.from(stats ? stats.var : new Float64Array(C).fill(2), [C]);
  const opts = { training: !eval_, eps: EPS, activation: act, schedule, poolSchedule };
  const y = batchNormMaxPool2d(x, rm, rv, w, b, opts);
  // the fused pass's node, or the two ops' last one
  const fusedOp = `batchNorm${act ? `+${act}` : ""}+maxPool2d`;
  const fusedHere = k.fused && poolSchedule.pool2;
  ok((y.gradFn?.op === fusedOp) === fusedHere, `${what}: op ${y.gradFn?.op}, fused ${fusedHere}`);
  const dy = Tensor.randn(y.shape, { seed: 25 });
  const before = queueStats().pendingLaunches;
  y.backward(dy);
  // one block: the pool's backward and batch norm's in one launch (backward_pooled)
  const launches = queueStats().pendingLaunches - before;
  const oneLaunch = fusedHere && batchNormLayout(shape, {}, schedule).blocks === 1;
  ok((launches === 1) === oneLaunch, `${what}: backward in ${launches} launches`);

  const xr = refArray(await x.toArray(), shape);
  const wr = await w.toArray(), br = await b.toArray();
  const normed = act
    ? refBatchNormActForward(xr, wr, br, EPS, act, stats).out
    : refBatchNormForward(xr, wr, br, EPS, stats).out;
  const dims = { n: N, c: C, h: H, w: W, kh: 2, kw: 2, sh: 2, sw: 2, ph: 0, pw: 0 };
  const pooled = refMaxPool2dForward(normed.data, dims);
  const g = {
    shape: [...shape],
    data: refMaxPool2dBackward(pooled.indices, await dy.toArray(), dims),
  };
  const grads = act
    ? refBatchNormActBackward(g, xr, wr, br, EPS, act, stats)
    : refBatchNormBackward(g, xr, wr, EPS, stats);
  assertClose(await y.toArray(), pooled.out, { atol: 2e-5, rtol: 1e-5 }, `${what}: out`);
  // dinp relative to each channel's scale |w| rstd rms(dinp), dweight and dbias to their
  // largest magnitude: float32 sums over the channel
  const ref = refBatchNormForward(xr, wr, br, EPS, stats);
  let ms = 0;
  for (const v of grads.dinp.data) ms += v * v;
  const scale = ref.rstd.map(() => Math.sqrt(ms / grads.dinp.data.length) || 1);
  assertClose(
    perChannel(await x.grad!.toArray(), shape, scale),
    perChannel(grads.dinp.data, shape, scale),
    { atol: 1e-4, rtol: 0 },
    `${what}: dinp / rms(dinp)`,
  );
  const big = (a: ArrayLike<number>) => Math.max(1e-6, ...Array.from(a, Math.abs));
  assertClose(await w.grad!.toArray(), grads.dweight, {
    atol: 1e-5 * big(grads.dweight) * N,
    rtol: 1e-4,
  }, `${what}: dweight`);
  assertClose(await b.grad!.toArray(), grads.dbias, {
    atol: 1e-5 * big(grads.dbias) * N,
    rtol: 1e-4,
  }, `${what}: dbias`);
  const start = stats ?? { mean: new Float64Array(C).fill(0.5), var: new Float64Array(C).fill(2) };
  const want = eval_ ? start : refRunningUpdate(start, xr, 0.1);
  assertClose(await rm.toArray(), want.mean, { atol: 1e-5, rtol: 1e-5 }, `${what}: running mean`);
  assertClose(await rv.toArray(), want.var, { atol: 1e-4, rtol: 1e-4 }, `${what}: running var`);
  for (const t of [x, w, b, rm, rv, y, dy]) t.dispose();
}

const normPools: NormPoolCase[] = [
  { shape: [2, 6, 24, 24], act: "sigmoid", fused: true }, // LeNet+BN's first, batch 2
  { shape: [32, 6, 24, 24], act: "sigmoid", fused: true }, // 8 threads a channel
  { shape: [3, 16, 8, 8], act: "sigmoid", eval: true, fused: true },
  { shape: [128, 1, 16, 20], act: "relu", fused: true }, // several blocks: the stats passes
  { shape: [3, 5, 8, 8], fused: true }, // no activation
  { shape: [2, 3, 5, 8], act: "sigmoid", fused: true }, // odd H: the last row never wins
  { shape: [4, 3, 6, 12], act: "relu", eval: true, fused: true }, // eval, OW not a multiple of 4
  { shape: [3, 2, 6, 6], act: "sigmoid", fused: false }, // W % 4 != 0: the two ops
];
for (const schedule of BATCH_NORM_SCHEDULES) {
  for (const pool of POOL_SCHEDULES) {
    gpuTest(
      `batchNormMaxPool2d matches the references composed (${schedule.name} batch norm, ` +
        `${pool.name} pool)`,
      async () => {
        for (const k of normPools) await checkNormPool(k, schedule, pool);
      },
    );
  }
}
