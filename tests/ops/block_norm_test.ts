import { ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose, type Tolerance } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { queueStats } from "../../src/gpu/queue.ts";
import { memoryStats } from "../../src/gpu/buffer_pool.ts";
import {
  BLOCK_NORM_PLAIN,
  BLOCK_NORM_SCHEDULES,
  type BlockNormSchedule,
  blockNormSchedule,
  ghostBatchNorm,
  groupNorm,
} from "../../src/ops/block_norm/block_norm.ts";
import { adapterProfile } from "../../src/gpu/device.ts";
import {
  refBlockNormBackward,
  refBlockNormForward,
  refGhostRunningUpdate,
  type RefRunning,
} from "../../src/ops/block_norm/reference.ts";
import { batchNorm } from "../../src/ops/batch_norm/batch_norm.ts";
import {
  refBatchNormBackward,
  refBatchNormForward,
  refRunningUpdate,
} from "../../src/ops/batch_norm/reference.ts";
import { refLayerNormForward } from "../../src/ops/layer_norm/reference.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import { Rng } from "../../src/tensor/random.ts";
import fixture from "../fixtures/group_norm.json" with { type: "json" };
import { centralDiff } from "../central_diff.ts";

const EPS = 1e-5;
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Normal samples rounded to float32, so the GPU and the float64 reference see the same values. */
function randArray(n: number, rng: Rng, mean = 0, std = 1): Float64Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = mean + std * rng.normal();
  return Float64Array.from(a);
}

/** The layer under test, as its blocks: GroupNorm(G) is (1, C/G), ghost BN(V) is (V, 1). */
type Kind = { group: number } | { ghost: number };

function blocks(kind: Kind, shape: readonly number[]): [number, number] {
  return "group" in kind ? [1, shape[1] / kind.group] : [Math.min(kind.ghost, shape[0]), 1];
}

const label = (kind: Kind) => "group" in kind ? `G=${kind.group}` : `ghost ${kind.ghost}`;

// ---------------------------------------------------------------------------------------
// The float64 reference on its own.

Deno.test("block norm reference backward matches central differences", () => {
  const cases: [number[], Kind][] = [
    [[2, 6, 3], { group: 3 }],
    [[3, 4], { group: 2 }],
    [[2, 4, 2, 2], { group: 1 }],
    [[7, 2, 3], { ghost: 3 }], // ghost batches of 3, 3, 1
    [[5, 3], { ghost: 2 }], // 2, 2, 1 (of one value: the reference defines it, the GPU refuses)
  ];
  const rng = new Rng(1);
  for (const [shape, kind] of cases) {
    const [bn, bc] = blocks(kind, shape);
    const C = shape[1], n = prod(shape);
    const inp = randArray(n, rng, 0.5, 2), dout = randArray(n, rng);
    for (const affine of [true, false]) {
      const weight = affine ? randArray(C, rng, 1, 0.5) : null;
      const bias = affine ? randArray(C, rng) : null;
      // L = sum(out * dout), so dL/dx is the backward's gradient.
      const loss = () =>
        refBlockNormForward(refArray(inp, shape), bn, bc, weight, bias, EPS).out.data
          .reduce((s, v, i) => s + v * dout[i], 0);
      const g = refBlockNormBackward(
        refArray(dout, shape),
        refArray(inp, shape),
        bn,
        bc,
        weight,
        EPS,
      );
      const h = 1e-6;
      const checks: [Float64Array, Float64Array, string][] = [[inp, g.dinp.data, "dinp"]];
      if (weight && bias) checks.push([weight, g.dweight, "dweight"], [bias, g.dbias, "dbias"]);
      for (const [x, dx, what] of checks) {
        const num = centralDiff(x, loss, h);
        const where = `${JSON.stringify(shape)} ${label(kind)} ${affine ? "affine" : "plain"}`;
        assertClose(
          dx,
          num,
          { atol: 1e-6, rtol: 1e-6 },
          `${what} vs central differences, ${where}`,
        );
      }
    }
  }
});

Deno.test("block norm reference agrees with the layer-norm and batch-norm references", () => {
  const rng = new Rng(2);
  const tight = { atol: 1e-12, rtol: 1e-12 };
  // GroupNorm with one group is layer norm over (C, S) (here without affine maps).
  const x = randArray(3 * 4 * 5, rng, 1, 3);
  const gn1 = refBlockNormForward(refArray(x, [3, 4, 5]), 1, 4, null, null, EPS);
  assertClose(gn1.out.data, refLayerNormForward(x, null, null, 3, 20, EPS).out, tight, "G=1 vs LN");
  // Ghost batches of at least N are batch norm: values, gradients, running update.
  const y = refArray(randArray(6 * 3 * 4, rng, -1, 2), [6, 3, 4]);
  const dy = refArray(randArray(6 * 3 * 4, rng), [6, 3, 4]);
  const w = randArray(3, rng, 1, 0.5), b = randArray(3, rng);
  for (const v of [6, 7, 100]) {
    assertClose(
      refBlockNormForward(y, v, 1, w, b, EPS).out.data,
      refBatchNormForward(y, w, b, EPS).out.data,
      tight,
      `ghost ${v} vs BN out`,
    );
    const g = refBlockNormBackward(dy, y, v, 1, w, EPS);
    const gb = refBatchNormBackward(dy, y, w, EPS);
    assertClose(g.dinp.data, gb.dinp.data, tight, `ghost ${v} vs BN dinp`);
    assertClose(g.dweight, gb.dweight, tight, `ghost ${v} vs BN dweight`);
    const start: RefRunning = { mean: Float64Array.of(1, 2, 3), var: Float64Array.of(1, 2, 3) };
    const r = refGhostRunningUpdate(start, y, v, 0.1), rb = refRunningUpdate(start, y, 0.1);
    assertClose(r.mean, rb.mean, tight, `ghost ${v} vs BN running mean`);
    assertClose(r.var, rb.var, tight, `ghost ${v} vs BN running var`);
  }
  // Ghost batches of N/2 are batch norm on each half.
  const half = (a: Float64Array, i: number) => a.slice(i * 36, i * 36 + 36);
  const ghost = refBlockNormForward(y, 3, 1, w, b, EPS).out.data;
  for (const i of [0, 1]) {
    const bn = refBatchNormForward(refArray(half(y.data, i), [3, 3, 4]), w, b, EPS).out.data;
    assertClose(half(ghost, i), bn, tight, `ghost 3, half ${i} vs BN`);
  }
});

// ---------------------------------------------------------------------------------------
// GPU against the reference.

interface Compare {
  affine?: "both" | "none" | "weight" | "bias";
  seed?: number;
  /** Input = mean + std * randn. */
  mean?: number;
  std?: number;
  outTol?: Tolerance;
  gradTol?: Tolerance;
  /** dweight and dbias; default atol 1e-6 per summed term. */
  sumTol?: Tolerance;
  /** The kernels' schedule (default the adapter's). */
  schedule?: BlockNormSchedule;
}

/** f(set, channel) for each element of an input of `shape` split into sets of bn x bc. */
function perElement(
  shape: readonly number[],
  bn: number,
  bc: number,
  f: (set: number, c: number) => number,
): Float64Array {
  const [N, C] = shape, S = prod(shape.slice(2));
  const out = new Float64Array(N * C * S);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const v = f(Math.floor(n / bn) * (C / bc) + Math.floor(c / bc), c);
      for (let s = 0; s < S; s++) out[(n * C + c) * S + s] = v;
    }
  }
  return out;
}

/**
 * Runs the layer forward and backward (upstream gradient `dout`) on the GPU and in the
 * float64 reference; compares out, dinp, dweight and dbias, and for ghost batch norm the
 * running statistics after the step.
 */
async function compare(shape: number[], kind: Kind, opts: Compare = {}): Promise<void> {
  const { affine = "both", seed = 0, mean = 0, std = 1 } = opts;
  const [bn, bc] = blocks(kind, shape);
  const C = shape[1], n = prod(shape);
  const rng = new Rng(seed + n);
  const inp = randArray(n, rng, mean, std), dout = randArray(n, rng);
  const weight = affine === "both" || affine === "weight" ? randArray(C, rng, 1, 0.5) : null;
  const bias = affine === "both" || affine === "bias" ? randArray(C, rng) : null;
  const start: RefRunning = { mean: randArray(C, rng), var: randArray(C, rng, 2, 0.5) };

  const x = Tensor.from(inp, { shape, requiresGrad: true });
  const w = weight ? Tensor.from(weight, { shape: [C], requiresGrad: true }) : null;
  const b = bias ? Tensor.from(bias, { shape: [C], requiresGrad: true }) : null;
  const rm = Tensor.from(start.mean, [C]), rv = Tensor.from(start.var, [C]);
  const counter = Tensor.zeros([]);
  const y = "group" in kind
    ? groupNorm(x, kind.group, w, b, { eps: EPS, schedule: opts.schedule })
    : ghostBatchNorm(x, rm, rv, w, b, {
      training: true,
      virtualBatchSize: kind.ghost,
      numBatchesTracked: counter,
      schedule: opts.schedule,
    });
  y.backward(Tensor.from(dout, shape));

  const ref = refBlockNormForward(refArray(inp, shape), bn, bc, weight, bias, EPS);
  const g = refBlockNormBackward(refArray(dout, shape), refArray(inp, shape), bn, bc, weight, EPS);
  const what = `${JSON.stringify(shape)} ${label(kind)}, affine ${affine}`;
  const tol = { atol: 1e-5, rtol: 1e-5 };
  assertClose(await y.toArray(), ref.out.data, { ...tol, ...opts.outTol }, `out ${what}`);
  // dinp = rstd * (terms of the size of g = dout * weight): float32 rounds those terms, so
  // the error scales with the set's rstd (large for a set of two close values) and with
  // |weight|. Both sides are divided by rstd * max(|weight|, 1) of the element's set.
  const scale = perElement(
    shape,
    bn,
    bc,
    (q, c) => ref.rstd[q] * Math.max(Math.abs(weight?.[c] ?? 1), 1),
  );
  assertClose(
    (await x.grad!.toArray()).map((v, i) => v / scale[i]),
    g.dinp.data.map((v, i) => v / scale[i]),
    { ...tol, ...opts.gradTol },
    `dinp / (rstd max(|weight|, 1)) ${what}`,
  );
  // dweight and dbias sum N*S terms: float32 summation error grows with their number.
  const sums = { atol: 1e-6 * Math.max(n / C, 10), rtol: 1e-5, ...opts.sumTol };
  if (w) assertClose(await w.grad!.toArray(), g.dweight, sums, `dweight ${what}`);
  if (b) assertClose(await b.grad!.toArray(), g.dbias, sums, `dbias ${what}`);
  if ("ghost" in kind) {
    const want = refGhostRunningUpdate(start, refArray(inp, shape), kind.ghost, 0.1);
    const run = { atol: 1e-5 * (1 + Math.abs(mean)), rtol: 1e-5 };
    assertClose(await rm.toArray(), want.mean, run, `running mean ${what}`);
    assertClose(await rv.toArray(), want.var, { atol: 1e-4, rtol: 1e-4 }, `running var ${what}`);
    ok(await counter.item() === 1, `${what}: num_batches_tracked counted once`);
  }
  for (const t of [x, w, b, y, rm, rv, counter]) t?.dispose();
}

// Odd and prime sizes (S % 4 != 0 takes the gathered path; sets of 1 and 2 values), a
// 3-D input, then the LeNet shapes.
const CASES: [number[], Kind][] = [
  [[1, 3, 7, 7], { group: 3 }],
  [[5, 6, 1, 1], { group: 3 }],
  [[5, 6, 1, 1], { group: 6 }], // sets of one value: xhat = 0, out = bias
  [[2, 4, 6, 6], { group: 4 }],
  [[3, 4], { group: 2 }],
  [[3, 6, 7], { group: 2 }],
  [[4, 6, 5, 5], { group: 1 }],
  [[2, 9, 13], { group: 9 }], // instance norm
  [[1, 513], { group: 3 }],
  [[256, 6, 24, 24], { group: 2 }],
  [[256, 16, 8, 8], { group: 4 }],
  [[256, 120], { group: 8 }],
  [[307, 4], { ghost: 32 }], // 9 ghost batches of 32 and one of 19
  [[513, 3, 2, 2], { ghost: 100 }], // 5 of 100 and one of 13
  [[7, 3, 7], { ghost: 3 }], // 3, 3 and a last one of 1 example (7 values)
  [[6, 6, 1, 1], { ghost: 4 }], // 4, 2 (S = 1)
  [[10, 5], { ghost: 4 }], // 4, 4, 2
  [[3, 2, 5, 5], { ghost: 1 }], // one example per ghost batch: instance norm
  [[256, 6, 24, 24], { ghost: 32 }],
  [[256, 16, 8, 8], { ghost: 64 }],
  [[256, 120], { ghost: 32 }],
];

for (const schedule of BLOCK_NORM_SCHEDULES) {
  for (const [shape, kind] of CASES) {
    gpuTest(
      `${"group" in kind ? "groupNorm" : "ghostBatchNorm"} ${JSON.stringify(shape)} ${
        label(kind)
      } forward/backward vs float64 reference (${schedule.name} schedule)`,
      () => compare(shape, kind, { seed: shape.length, schedule }),
    );
  }
}

/** A schedule with fixed rows per thread and workgroup size (for the layout tests). */
function fixed(rowsPerThread: number, workgroupSize: number): BlockNormSchedule {
  return {
    name: `rows${rowsPerThread}-wg${workgroupSize}`,
    adapters: [],
    measured: "",
    tuning: () => ({ rowsPerThread, workgroupSize }),
  };
}

gpuTest("block norm gives the same answer with every schedule and thread layout", async () => {
  // Every choice must agree, including runs that cross channel blocks, examples and ghost
  // batches, and a last thread with a partial run.
  const layouts = [[1, 64], [3, 32], [16, 64], [7, 256], [2, 1]].map(([r, w]) => fixed(r, w));
  for (const schedule of [...BLOCK_NORM_SCHEDULES, ...layouts]) {
    const seed = schedule.tuning(1).rowsPerThread;
    await compare([5, 6, 1, 1], { group: 3 }, { seed, schedule });
    await compare([3, 6, 7], { group: 2 }, { seed, schedule });
    await compare([37, 5], { ghost: 8 }, { seed, schedule });
    await compare([11, 3, 2, 2], { ghost: 4 }, { seed, schedule });
    await compare([256, 120], { group: 8 }, { seed, schedule });
  }
  throws(() => groupNorm(Tensor.zeros([2, 4]), 2, null, null, { schedule: fixed(0, 64) }), {
    message: "block norm schedule rows0-wg64 needs rowsPerThread >= 1 and workgroupSize in " +
      "1..256 (integers), got 0 and 64",
  });
  const measured = adapterProfile().measured;
  ok(blockNormSchedule().name === (measured === "llvmpipe" ? "llvmpipe" : "plain"));
  ok(blockNormSchedule({ ...adapterProfile(), measured: null }) === BLOCK_NORM_PLAIN);
});

gpuTest(
  "block norm without affine, or with a lone weight or bias, vs float64 reference",
  async () => {
    for (
      const [shape, kind] of [[[3, 6, 7], { group: 3 }], [[10, 3, 2, 2], { ghost: 4 }]] as const
    ) {
      for (const affine of ["none", "weight", "bias"] as const) {
        await compare([...shape], kind, { affine });
      }
    }
  },
);

// Sets of mean 1e4 and std 1. E[x^2] - E[x]^2 in float32 would lose every digit (1e8
// against a variance of 1). The saved mean is rounded to float32, within 2^-11 = 4.9e-4 of
// the true one near 1e4 (as in PyTorch and batchNorm), which shifts xhat by up to that much
// (rstd ~ 1): out and dinp err by up to ~1e-3, and dweight by 4.9e-4 sum |dout| < 5e-4 N*S.
gpuTest("block norm is stable for sets of mean 1e4 and std 1", async () => {
  const cases: [number[], Kind][] = [
    [[4, 6, 9, 9], { group: 3 }],
    [[8, 120], { group: 4 }],
    [[64, 3, 7], { ghost: 10 }],
    [[512, 7], { ghost: 32 }],
  ];
  for (const [shape, kind] of cases) {
    const perChannel = prod(shape) / shape[1];
    await compare(shape, kind, {
      mean: 1e4,
      outTol: { atol: 2e-3, rtol: 0 },
      gradTol: { atol: 2e-3, rtol: 1e-3 },
      sumTol: { atol: 5e-4 * perChannel },
    });
  }
  // ...where the naive one-pass formula in float32 is wrong by far more than that.
  const rng = new Rng(5);
  const x = randArray(4 * 81, rng, 1e4);
  let s = 0, sq = 0;
  for (const v of x) {
    s = Math.fround(s + v);
    sq = Math.fround(sq + Math.fround(v * v));
  }
  const naive = Math.fround(sq / x.length) - Math.fround(s / x.length) ** 2;
  const exact = 1 /
    refBlockNormForward(refArray(x, [1, 1, x.length]), 1, 1, null, null, 0).rstd[0] ** 2;
  ok(Math.abs(naive - exact) > 0.1, `naive float32 variance ${naive} vs ${exact}`);
});

gpuTest("ghostBatchNorm running statistics over three steps, momentum 0.1 and 1/k", async () => {
  const shape = [19, 3, 5, 5]; // ghost batches of 8, 8, 3
  for (const cumulative of [false, true]) {
    const rm = Tensor.zeros([3]), rv = Tensor.ones([3]), counter = Tensor.zeros([]);
    let want: RefRunning = { mean: new Float64Array(3), var: new Float64Array(3).fill(1) };
    for (let k = 1; k <= 3; k++) {
      const x = Tensor.randn(shape, { seed: 100 + k }).mul(k).add(k);
      ghostBatchNorm(x, rm, rv, null, null, {
        training: true,
        virtualBatchSize: 8,
        momentum: cumulative ? null : 0.1,
        numBatchesTracked: counter,
      }).dispose();
      want = refGhostRunningUpdate(
        want,
        refArray(await x.toArray(), shape),
        8,
        cumulative ? 1 / k : 0.1,
      );
    }
    const what = cumulative ? "cumulative" : "momentum 0.1";
    assertClose(await rm.toArray(), want.mean, { atol: 1e-5, rtol: 1e-5 }, `${what} mean`);
    assertClose(await rv.toArray(), want.var, { atol: 1e-5, rtol: 1e-5 }, `${what} var`);
    ok(await counter.item() === 3, `${what}: three batches counted`);
  }
});

/** x [N, C, ...] with its own gradient, from host data. */
function leaf(data: ArrayLike<number>, shape: number[]): Tensor {
  return Tensor.from(data, { shape, requiresGrad: true });
}

gpuTest(
  "ghostBatchNorm with virtualBatchSize >= N is batchNorm (values, gradients, running statistics)",
  async () => {
    for (const [shape, v] of [[[16, 3, 5, 5], 16], [[7, 4], 32], [[6, 2, 9], 100]] as const) {
      const rng = new Rng(v);
      const C = shape[1], n = prod(shape);
      const inp = randArray(n, rng, 2, 3), dout = Tensor.from(randArray(n, rng), [...shape]);
      const wd = randArray(C, rng, 1, 0.5), bd = randArray(C, rng);
      const run = (ghost: boolean) => {
        const x = leaf(inp, [...shape]), w = leaf(wd, [C]), b = leaf(bd, [C]);
        const rm = Tensor.zeros([C]), rv = Tensor.ones([C]), counter = Tensor.zeros([]);
        const opts = { training: true, numBatchesTracked: counter };
        const y = ghost
          ? ghostBatchNorm(x, rm, rv, w, b, { ...opts, virtualBatchSize: v })
          : batchNorm(x, rm, rv, w, b, opts);
        y.backward(dout);
        return [y, x.grad!, w.grad!, b.grad!, rm, rv, counter];
      };
      const [got, want] = [run(true), run(false)];
      const names = ["out", "dinp", "dweight", "dbias", "running mean", "running var", "counter"];
      for (let i = 0; i < names.length; i++) {
        // Two kernels summing in different orders: float32 rounding apart, no more.
        assertClose(
          await got[i].toArray(),
          await want[i].toArray(),
          { atol: 2e-6 * Math.sqrt(n / C), rtol: 1e-5 },
          `${JSON.stringify(shape)} ghost ${v}: ${names[i]}`,
        );
      }
    }
  },
);

gpuTest("ghostBatchNorm with virtualBatchSize N/2 is batchNorm on each half", async () => {
  for (const shape of [[16, 3, 5, 5], [64, 7], [10, 2, 3]]) {
    const rng = new Rng(shape[0]);
    const [N, C] = shape, n = prod(shape), h = n / 2, half = [N / 2, ...shape.slice(1)];
    const inp = randArray(n, rng, -1, 2), dout = randArray(n, rng);
    const wd = randArray(C, rng, 1, 0.5), bd = randArray(C, rng);
    const x = leaf(inp, shape), w = leaf(wd, [C]), b = leaf(bd, [C]);
    const y = ghostBatchNorm(x, null, null, w, b, { training: true, virtualBatchSize: N / 2 });
    y.backward(Tensor.from(dout, shape));
    const [out, dinp, dw, db] = await Promise.all(
      [y, x.grad!, w.grad!, b.grad!].map((t) => t.toArray()),
    );
    const dwSum = new Float64Array(C), dbSum = new Float64Array(C);
    for (const i of [0, 1]) {
      const xi = leaf(inp.slice(i * h, i * h + h), half), wi = leaf(wd, [C]), bi = leaf(bd, [C]);
      const yi = batchNorm(xi, null, null, wi, bi, { training: true });
      yi.backward(Tensor.from(dout.slice(i * h, i * h + h), half));
      const tol = { atol: 1e-5, rtol: 1e-5 };
      const what = `${JSON.stringify(shape)} half ${i}`;
      assertClose(out.slice(i * h, i * h + h), await yi.toArray(), tol, `${what}: out`);
      assertClose(dinp.slice(i * h, i * h + h), await xi.grad!.toArray(), tol, `${what}: dinp`);
      (await wi.grad!.toArray()).forEach((v, c) => dwSum[c] += v);
      (await bi.grad!.toArray()).forEach((v, c) => dbSum[c] += v);
    }
    const sums = { atol: 1e-5 * Math.sqrt(n / C), rtol: 1e-5 };
    assertClose(dw, dwSum, sums, `${JSON.stringify(shape)}: dweight = sum over halves`);
    assertClose(db, dbSum, sums, `${JSON.stringify(shape)}: dbias = sum over halves`);
  }
});

gpuTest(
  "groupNorm with one group is layerNorm over (C, H, W) with a per-channel affine map",
  async () => {
    const { layerNorm } = await import("../../src/ops/layer_norm/layer_norm.ts");
    const x = Tensor.randn([5, 6, 7, 7], { seed: 8 }).mul(3).add(1);
    const w = Tensor.randn([6], { seed: 9 }), b = Tensor.randn([6], { seed: 10 });
    const we = w.reshape([6, 1, 1]).broadcastTo([6, 7, 7]).clone();
    const be = b.reshape([6, 1, 1]).broadcastTo([6, 7, 7]).clone();
    assertClose(
      await groupNorm(x, 1, w, b).toArray(),
      await layerNorm(x, [6, 7, 7], we, be).toArray(),
      { atol: 2e-6, rtol: 1e-5 },
      "G=1 vs layerNorm",
    );
  },
);

gpuTest("ghostBatchNorm in eval mode is batchNorm with the running statistics", async () => {
  const x = Tensor.randn([9, 3, 4, 4], { seed: 3 }), w = Tensor.randn([3], { seed: 4 });
  const rm = Tensor.from([0.5, -1, 2], [3]), rv = Tensor.from([1, 4, 0.25], [3]);
  const got = ghostBatchNorm(x, rm, rv, w, null, { virtualBatchSize: 2 });
  const want = batchNorm(x, rm, rv, w, null);
  assertClose(await got.toArray(), await want.toArray(), { atol: 0, rtol: 0 }, "eval");
});

gpuTest("block norm forward + backward runs without a host wait", () => {
  const x = Tensor.randn([8, 4, 6, 6], { seed: 3, requiresGrad: true });
  const w = Tensor.ones([4], { requiresGrad: true }), b = Tensor.zeros([4], { requiresGrad: true });
  const rm = Tensor.zeros([4]), rv = Tensor.ones([4]), counter = Tensor.zeros([]);
  const before = queueStats().submits;
  groupNorm(x, 2, w, b).sum().backward();
  ghostBatchNorm(x, rm, rv, w, b, {
    training: true,
    virtualBatchSize: 3,
    numBatchesTracked: counter,
  })
    .sum().backward();
  ok(queueStats().submits === before, "forward + backward submitted work (a host wait?)");
});

gpuTest("block norm frees its saved statistics when no gradient is recorded", async () => {
  const x = Tensor.randn([16, 6, 5], { seed: 3 });
  const w = Tensor.ones([6], { requiresGrad: true });
  const b = Tensor.zeros([6], { requiresGrad: true });
  const rm = Tensor.zeros([6]), rv = Tensor.ones([6]);
  const before = memoryStats().liveBytes;
  for (let i = 0; i < 3; i++) {
    noGrad(() => groupNorm(x, 3, w, b)).dispose();
    noGrad(() => ghostBatchNorm(x, rm, rv, w, b, { training: true, virtualBatchSize: 4 }))
      .dispose();
  }
  groupNorm(x, 2, null, b.detach()).dispose(); // nothing requires grad; a lone bias
  ok(memoryStats().liveBytes === before, "no buffer outlives its output");
  const y = groupNorm(x, 3, w, b);
  ok(y.requiresGrad && y.gradFn?.op === "groupNorm", "recorded when a parent requires grad");
  ok((await y.toArray()).every(Number.isFinite), "finite output");
  for (const t of [x, w, b, y, rm, rv]) t.dispose();
});

gpuTest("groupNorm of an empty batch: empty output, zero dweight and dbias", async () => {
  const x = Tensor.zeros([0, 4, 3], { requiresGrad: true });
  const w = Tensor.ones([4], { requiresGrad: true });
  const b = Tensor.zeros([4], { requiresGrad: true });
  const y = groupNorm(x, 2, w, b);
  y.sum().backward();
  ok(y.shape.join() === "0,4,3" && (await y.toArray()).length === 0, "empty output");
  assertClose(await w.grad!.toArray(), [0, 0, 0, 0], { atol: 0 }, "dweight");
  assertClose(await b.grad!.toArray(), [0, 0, 0, 0], { atol: 0 }, "dbias");
});

gpuTest("block norm matches PyTorch fixtures (forward and backward)", async () => {
  ok(fixture.group.length >= 6 && fixture.ghost.length >= 3, "fixture has its cases");
  const cases = [
    ...fixture.group.map((c) => ({ ...c, kind: { group: c.numGroups } as Kind })),
    ...fixture.ghost.map((c) => ({ ...c, kind: { ghost: c.virtualBatchSize } as Kind })),
  ];
  for (const c of cases) {
    const what = `${JSON.stringify(c.shape)} ${label(c.kind)}`;
    const C = c.shape[1];
    const x = Tensor.from(c.inp, { shape: c.shape, requiresGrad: true });
    const w = c.weight ? Tensor.from(c.weight, { shape: [C], requiresGrad: true }) : null;
    const b = c.bias ? Tensor.from(c.bias, { shape: [C], requiresGrad: true }) : null;
    const y = "group" in c.kind
      ? groupNorm(x, c.kind.group, w, b, { eps: c.eps })
      : ghostBatchNorm(x, null, null, w, b, {
        training: true,
        virtualBatchSize: c.kind.ghost,
        eps: c.eps,
      });
    y.backward(Tensor.from(c.dout, c.shape));
    const tol = { atol: 1e-5, rtol: 1e-5 };
    assertClose(await y.toArray(), c.out, tol, `out ${what}`);
    assertClose(await x.grad!.toArray(), c.dinp, tol, `dinp ${what}`);
    if (w) assertClose(await w.grad!.toArray(), c.dweight!, tol, `dweight ${what}`);
    if (b) assertClose(await b.grad!.toArray(), c.dbias!, tol, `dbias ${what}`);

    // The float64 reference agrees with PyTorch to the fixture's 7 digits.
    const [bn, bc] = blocks(c.kind, c.shape);
    const f32 = (a: number[] | null) => a && Float64Array.from(Float32Array.from(a));
    const inp = refArray(f32(c.inp)!, c.shape);
    const ref = refBlockNormForward(inp, bn, bc, f32(c.weight), f32(c.bias), c.eps);
    const g = refBlockNormBackward(
      refArray(f32(c.dout)!, c.shape),
      inp,
      bn,
      bc,
      f32(c.weight),
      c.eps,
    );
    const tight = { atol: 1e-6, rtol: 1e-6 };
    assertClose(ref.out.data, c.out, tight, `reference out ${what}`);
    assertClose(g.dinp.data, c.dinp, tight, `reference dinp ${what}`);
    if (c.dweight) assertClose(g.dweight, c.dweight, tight, `reference dweight ${what}`);
    if (c.dbias) assertClose(g.dbias, c.dbias, tight, `reference dbias ${what}`);
  }
});

gpuTest("block norm errors name the bad value and the fix", () => {
  const x = Tensor.zeros([2, 6, 5, 5]);
  throws(() => groupNorm(x, 4), {
    message: "Expected number of channels in input to be divisible by numGroups, but got input " +
      "of shape [2, 6, 5, 5] and numGroups=4",
  });
  throws(() => groupNorm(Tensor.zeros([6]), 3), {
    message: "groupNorm expects input with at least 2 dimensions [N, C, ...], got [6]",
  });
  throws(() => groupNorm(x, 0), {
    message: "groupNorm expects a positive integer numGroups, got 0",
  });
  throws(() => groupNorm(x, 2, Tensor.ones([3])), {
    message: "groupNorm: weight must have shape [6] (one value per channel of input " +
      "[2, 6, 5, 5]), got [3]",
  });
  throws(() => groupNorm(x, 2, null, null, { eps: -1 }), {
    message: "groupNorm expects eps >= 0, got -1",
  });
  const rm = Tensor.zeros([4]), rv = Tensor.ones([4]);
  throws(() => ghostBatchNorm(Tensor.zeros([33, 4]), rm, rv, null, null, { training: true }), {
    message: "Expected more than 1 value per channel in each ghost batch when training, got " +
      "input size [33, 4] with virtualBatchSize 32: the last ghost batch holds 1 example; drop " +
      "that example, or pick a virtualBatchSize that leaves a remainder other than 1",
  });
  throws(
    () =>
      ghostBatchNorm(Tensor.zeros([8, 4, 1]), rm, rv, null, null, {
        training: true,
        virtualBatchSize: 1,
      }),
    /each ghost batch holds 1 example; use a virtualBatchSize of at least 2/,
  );
  throws(() => ghostBatchNorm(Tensor.zeros([1, 4]), rm, rv, null, null, { training: true }), {
    message: "Expected more than 1 value per channel when training, got input size [1, 4]",
  });
  throws(
    () =>
      ghostBatchNorm(Tensor.zeros([8, 4]), rm, rv, null, null, {
        training: true,
        virtualBatchSize: 2.5,
      }),
    { message: "ghostBatchNorm expects a positive integer virtualBatchSize, got 2.5" },
  );
  throws(() => ghostBatchNorm(Tensor.zeros([8, 3]), rm, rv), {
    message: "ghostBatchNorm: runningMean must have shape [3] (one value per channel of input " +
      "[8, 3]), got [4]",
  });
  throws(
    () => ghostBatchNorm(Tensor.zeros([8, 4]), null, null),
    /needs runningMean and runningVar/,
  );
  throws(
    () =>
      ghostBatchNorm(Tensor.zeros([8, 4]), rm, rv, null, null, { training: true, momentum: null }),
    /momentum null \(the cumulative average\) needs the numBatchesTracked counter/,
  );
  // A last ghost batch of one example is fine when it holds more than one value per channel.
  ghostBatchNorm(Tensor.zeros([33, 4, 2]), rm, rv, null, null, { training: true }).dispose();
});
