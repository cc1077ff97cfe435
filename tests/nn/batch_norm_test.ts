import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { BatchNorm1d, BatchNorm2d } from "../../src/nn/batch_norm.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import {
  refBatchNormForward,
  refRunningUpdate,
  type RefStats,
} from "../../src/ops/batch_norm/reference.ts";
import fixture from "../fixtures/batch_norm.json" with { type: "json" };

const TOL = { atol: 2e-5, rtol: 1e-5 };

gpuTest("BatchNorm2d defaults: parameters, buffers and state-dict names as PyTorch", async () => {
  const bn = new BatchNorm2d(3);
  deepEqual(Object.keys(bn.stateDict()), [
    "weight",
    "bias",
    "running_mean",
    "running_var",
    "num_batches_tracked",
  ]);
  deepEqual(bn.namedParameters().map(([k]) => k), ["weight", "bias"]);
  deepEqual(Array.from(await bn.weight!.toArray()), [1, 1, 1]);
  deepEqual(Array.from(await bn.bias!.toArray()), [0, 0, 0]);
  deepEqual(Array.from(await bn.runningMean!.toArray()), [0, 0, 0]);
  deepEqual(Array.from(await bn.runningVar!.toArray()), [1, 1, 1]);
  equal(await bn.numBatchesTracked!.item(), 0);
  equal(bn.eps, 1e-5);
  equal(bn.momentum, 0.1);
  equal(bn.training, true);
  equal(bn.weight!.requiresGrad, true);

  const plain = new BatchNorm1d(4, { affine: false, trackRunningStats: false });
  deepEqual(Object.keys(plain.stateDict()), []);
  deepEqual(plain.parameters(), []);
  equal(plain.weight, null);
  equal(plain.runningMean, null);
});

type Case = typeof fixture.bn2d;

function loadCase(bn: BatchNorm1d | BatchNorm2d, k: Case, stats?: RefStats) {
  const c = k.weight.length;
  bn.loadStateDict({
    weight: { shape: [c], data: k.weight },
    bias: { shape: [c], data: k.bias },
    running_mean: { shape: [c], data: stats ? stats.mean : new Array(c).fill(0) },
    running_var: { shape: [c], data: stats ? stats.var : new Array(c).fill(1) },
    num_batches_tracked: { shape: [], data: [0] },
  });
}

async function checkFixture(name: string, k: Case, make: (c: number) => BatchNorm1d | BatchNorm2d) {
  const c = k.weight.length;
  const dout = Tensor.from(k.dout, k.shape);
  for (const mode of ["train", "eval"] as const) {
    const bn = make(c);
    const want = k[mode];
    if (mode === "eval") {
      bn.eval();
      loadCase(bn, k, {
        mean: Float64Array.from(k.eval.running_mean),
        var: Float64Array.from(k.eval.running_var),
      });
    } else loadCase(bn, k);
    const x = Tensor.from(k.x, { shape: k.shape, requiresGrad: true });
    const out = bn.forward(x);
    out.backward(dout);
    const what = `${name} ${mode}`;
    assertClose(await out.toArray(), want.out, TOL, `${what}: out`);
    assertClose(await x.grad!.toArray(), want.dinp, TOL, `${what}: dinp`);
    assertClose(await bn.weight!.grad!.toArray(), want.dweight, TOL, `${what}: dweight`);
    assertClose(await bn.bias!.grad!.toArray(), want.dbias, TOL, `${what}: dbias`);
    if (mode === "train") {
      assertClose(await bn.runningMean!.toArray(), k.train.running_mean, TOL, `${what}: mean`);
      assertClose(await bn.runningVar!.toArray(), k.train.running_var, TOL, `${what}: var`);
      equal(await bn.numBatchesTracked!.item(), k.train.num_batches_tracked);
    } else {
      // Eval mode leaves the running statistics and the counter alone.
      assertClose(await bn.runningMean!.toArray(), k.eval.running_mean, TOL, `${what}: mean`);
      equal(await bn.numBatchesTracked!.item(), 0);
    }
  }
  for (const momentum of [0.1, null]) {
    const bn = make(c);
    bn.momentum = momentum;
    loadCase(bn, k);
    for (const xs of k.steps.xs) bn.forward(Tensor.from(xs, k.shape)).dispose();
    const want = k.steps[momentum === null ? "momentum_none" : "momentum_0.1"];
    const what = `${name} three steps, momentum ${momentum}`;
    assertClose(await bn.runningMean!.toArray(), want.running_mean, TOL, `${what}: mean`);
    assertClose(await bn.runningVar!.toArray(), want.running_var, TOL, `${what}: var`);
    equal(await bn.numBatchesTracked!.item(), want.num_batches_tracked);
    bn.eval();
    const out = bn.forward(Tensor.from(k.x, k.shape));
    assertClose(await out.toArray(), want.eval_out, TOL, `${what}: eval out`);
  }
}

gpuTest(
  "BatchNorm2d matches PyTorch fixtures ([4, 3, 5, 5])",
  () => checkFixture("bn2d", fixture.bn2d, (c) => new BatchNorm2d(c)),
);

gpuTest("BatchNorm1d matches PyTorch fixtures ([8, 4] and [4, 3, 5])", async () => {
  await checkFixture("bn1d", fixture.bn1d, (c) => new BatchNorm1d(c));
  await checkFixture("bn1d_3d", fixture.bn1d_3d, (c) => new BatchNorm1d(c));
});

gpuTest("BatchNorm2d running statistics over three steps match the reference", async () => {
  const shape = [3, 5, 7, 7];
  for (const momentum of [0.1, null]) {
    const bn = new BatchNorm2d(5, { momentum });
    let want: RefStats = { mean: new Float64Array(5), var: new Float64Array(5).fill(1) };
    for (let k = 1; k <= 3; k++) {
      const x = Tensor.randn(shape, { seed: k }).mul(k).add(2 * k);
      bn.forward(x).dispose();
      want = refRunningUpdate(want, refArray(await x.toArray(), shape), momentum ?? 1 / k);
    }
    equal(await bn.numBatchesTracked!.item(), 3);
    assertClose(await bn.runningMean!.toArray(), want.mean, TOL, `momentum ${momentum}: mean`);
    assertClose(await bn.runningVar!.toArray(), want.var, TOL, `momentum ${momentum}: var`);
    // Eval mode normalizes with them.
    const x = Tensor.randn([1, 5, 7, 7], { seed: 9 });
    const out = bn.eval().forward(x);
    const ref = refBatchNormForward(refArray(await x.toArray(), x.shape), null, null, 1e-5, want);
    assertClose(await out.toArray(), ref.out.data, TOL, `momentum ${momentum}: eval out`);
    bn.resetRunningStats();
    equal(await bn.numBatchesTracked!.item(), 0);
    deepEqual(Array.from(await bn.runningVar!.toArray()), [1, 1, 1, 1, 1]);
  }
});

gpuTest("BatchNorm without running statistics uses batch statistics in eval mode", async () => {
  const x = Tensor.randn([6, 4], { seed: 5 }).mul(3).add(1);
  const bn = new BatchNorm1d(4, { trackRunningStats: false });
  const train = await bn.forward(x).toArray();
  const evalOut = await bn.eval().forward(x).toArray();
  const ref = refBatchNormForward(refArray(await x.toArray(), [6, 4]), null, null, 1e-5);
  assertClose(train, ref.out.data, TOL, "train");
  assertClose(evalOut, ref.out.data, TOL, "eval");
  equal(bn.numBatchesTracked, null);
  // ...so one value per channel is an error even in eval mode, as in PyTorch.
  throws(() => bn.forward(Tensor.zeros([1, 4])), /Expected more than 1 value per channel/);
});

gpuTest("BatchNorm errors name the shape expected and got", () => {
  throws(() => new BatchNorm2d(6).forward(Tensor.zeros([256, 120])), {
    message: "BatchNorm2d expects 4-D input [N, C, H, W], got [256, 120]",
  });
  throws(() => new BatchNorm2d(6).forward(Tensor.zeros([2, 5, 7, 7])), {
    message: "BatchNorm2d(6) expects 6 channels, got input [2, 5, 7, 7]",
  });
  throws(() => new BatchNorm1d(3).forward(Tensor.zeros([2, 3, 4, 5])), {
    message: "BatchNorm1d expects 2-D input [N, C] or 3-D input [N, C, L], got [2, 3, 4, 5]",
  });
  throws(() => new BatchNorm1d(120).forward(Tensor.zeros([2, 84])), {
    message: "BatchNorm1d(120) expects 120 channels, got input [2, 84]",
  });
  throws(() => new BatchNorm1d(4).forward(Tensor.zeros([1, 4])), {
    message: "Expected more than 1 value per channel when training, got input size [1, 4]",
  });
  throws(() => new BatchNorm2d(0), /positive integer number of features, got 0/);
  // A batch of one is fine in eval mode, and with more than one value per channel.
  new BatchNorm1d(4).eval().forward(Tensor.zeros([1, 4])).dispose();
  new BatchNorm2d(2).forward(Tensor.zeros([1, 2, 2, 1])).dispose();
});
