// The lecture's from-scratch batch_norm (d2l, "Batch Normalization", section 6 of
// LECTURE.md), written line for line with bnlab tensor ops, against nn.BatchNorm2d/1d.
// Same outputs and gradients; the same moving mean once the two momentum conventions are
// matched (d2l weights the OLD value by 0.9, PyTorch the NEW one by 0.1); and a moving
// variance that differs exactly by PyTorch's unbiased factor M/(M-1).
import { equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { batchNorm } from "../models/lecture_batch_norm.ts";
import { BatchNorm1d, BatchNorm2d } from "../../src/nn/batch_norm.ts";

async function compare(
  shape: number[],
  make: (c: number) => BatchNorm1d | BatchNorm2d,
): Promise<void> {
  const c = shape[1];
  const param = shape.length === 4 ? [1, c, 1, 1] : [1, c];
  const what = JSON.stringify(shape);
  const m = shape.reduce((a, b) => a * b, 1) / c; // values per channel
  const tol = { atol: 2e-5, rtol: 2e-5 };

  const gammaData = await Tensor.randn([c], { seed: 1 }).add(1).toArray();
  const betaData = await Tensor.randn([c], { seed: 2 }).toArray();
  const gamma = Tensor.from(gammaData, { shape: param, requiresGrad: true });
  const beta = Tensor.from(betaData, { shape: param, requiresGrad: true });
  let movingMean = Tensor.zeros(param), movingVar = Tensor.ones(param);
  const bn = make(c);
  bn.loadStateDict({
    weight: { shape: [c], data: gammaData },
    bias: { shape: [c], data: betaData },
    running_mean: { shape: [c], data: new Array(c).fill(0) },
    running_var: { shape: [c], data: new Array(c).fill(1) },
    num_batches_tracked: { shape: [], data: [0] },
  });

  for (let step = 1; step <= 3; step++) {
    const data = await Tensor.randn(shape, { seed: 10 + step }).mul(step).add(step).toArray();
    const X1 = Tensor.from(data, { shape: shape, requiresGrad: true });
    const X2 = Tensor.from(data, { shape: shape, requiresGrad: true });
    const dout = Tensor.randn(shape, { seed: 20 + step });
    let Y1: Tensor;
    [Y1, movingMean, movingVar] = batchNorm(X1, gamma, beta, movingMean, movingVar, 1e-5, 0.9);
    const Y2 = bn.forward(X2);
    assertClose(await Y2.toArray(), await Y1.toArray(), tol, `${what} step ${step}: Y`);
    Y1.backward(dout);
    Y2.backward(dout);
    assertClose(await X2.grad!.toArray(), await X1.grad!.toArray(), tol, `${what}: dX`);
  }
  // Parameter gradients accumulated over the three steps, in both.
  assertClose(await bn.weight!.grad!.toArray(), await gamma.grad!.toArray(), tol, "dgamma");
  assertClose(await bn.bias!.grad!.toArray(), await beta.grad!.toArray(), tol, "dbeta");

  // moving = 0.9 * moving + 0.1 * batch is PyTorch's update with momentum 0.1.
  const mm = await movingMean.toArray();
  assertClose(await bn.runningMean!.toArray(), mm, tol, `${what}: moving mean`);
  // Both variances start at 1 and follow v_k = 0.9 v_{k-1} + 0.1 b_k, with b_k the biased
  // batch variance (d2l) or b_k * m/(m-1) (PyTorch): so rv - 0.9^3 = m/(m-1) (mv - 0.9^3).
  const mv = await movingVar.toArray();
  const rv = await bn.runningVar!.toArray();
  const decay = 0.9 ** 3;
  assertClose(
    Array.from(rv, (v) => v - decay),
    Array.from(mv, (v) => (v - decay) * m / (m - 1)),
    tol,
    `${what}: moving var, unbiased vs biased`,
  );
  ok(m < 1e6 && rv.some((v, i) => Math.abs(v - mv[i]) > 1e-5), "the variances do differ");
  equal(await bn.numBatchesTracked!.item(), 3);

  // Prediction: the same moving statistics give the same output.
  bn.loadStateDict({
    weight: { shape: [c], data: gammaData },
    bias: { shape: [c], data: betaData },
    running_mean: { shape: [c], data: mm },
    running_var: { shape: [c], data: mv },
    num_batches_tracked: { shape: [], data: [3] },
  });
  bn.eval();
  const X = Tensor.randn(shape, { seed: 99 }).add(1);
  const [Y1] = noGrad(() => batchNorm(X, gamma, beta, movingMean, movingVar, 1e-5, 0.9));
  const Y2 = noGrad(() => bn.forward(X));
  assertClose(await Y2.toArray(), await Y1.toArray(), tol, `${what}: prediction`);
}

gpuTest(
  "from-scratch batch_norm equals BatchNorm2d (LeNet's first BN shape)",
  () => compare([32, 6, 24, 24], (c) => new BatchNorm2d(c)),
);

gpuTest(
  "from-scratch batch_norm equals BatchNorm2d on odd sizes",
  () => compare([3, 5, 7, 7], (c) => new BatchNorm2d(c)),
);

gpuTest("from-scratch batch_norm equals BatchNorm1d ([N, D])", async () => {
  await compare([256, 120], (c) => new BatchNorm1d(c));
  await compare([7, 13], (c) => new BatchNorm1d(c));
});
