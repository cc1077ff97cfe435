// The lecture's from-scratch batch_norm and BatchNorm (d2l, LECTURE.md section 6), written
// line for line in bnlab ops, dropped into LeNet with lenet({ norm: factory }) and trained
// under fit() with no keep(): its moving statistics are reassigned every step (#8).
import { equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { isGradEnabled } from "../../src/tensor/autograd.ts";
import { Module } from "../../src/nn/module.ts";
import { lenet } from "../../src/models/lenet.ts";
import { fit } from "../../src/train/fit.ts";
import { evaluateAccuracy } from "../../src/train/evaluate.ts";
import { DataLoader } from "../../src/data/loader.ts";
import { loadFashionMnist } from "../../src/data/fashion_mnist.ts";

function batchNorm(
  X: Tensor,
  gamma: Tensor,
  beta: Tensor,
  movingMean: Tensor,
  movingVar: Tensor,
  eps: number,
  momentum: number,
): [Tensor, Tensor, Tensor] {
  let XHat: Tensor;
  // Use is_grad_enabled to tell whether we are in training mode
  if (!isGradEnabled()) {
    // In prediction mode, use the mean and variance obtained by moving average
    XHat = X.sub(movingMean).div(movingVar.add(eps).sqrt());
  } else {
    if (X.rank !== 2 && X.rank !== 4) throw new Error("expected 2-D or 4-D input");
    let mean: Tensor, variance: Tensor;
    if (X.rank === 2) {
      // When using a fully connected layer, calculate the mean and variance on the feature dimension
      mean = X.mean(0);
      variance = X.sub(mean).pow(2).mean(0);
    } else {
      // When using a two-dimensional convolutional layer, calculate the mean and variance on
      // the channel dimension (axis=1). Here we need to maintain the shape of X, so that the
      // broadcasting operation can be carried out later
      mean = X.mean([0, 2, 3], true);
      variance = X.sub(mean).pow(2).mean([0, 2, 3], true);
    }
    // In training mode, the current mean and variance are used
    XHat = X.sub(mean).div(variance.add(eps).sqrt());
    // Update the mean and variance using moving average
    movingMean = movingMean.mul(momentum).add(mean.mul(1.0 - momentum));
    movingVar = movingVar.mul(momentum).add(variance.mul(1.0 - momentum));
  }
  const Y = gamma.mul(XHat).add(beta); // Scale and shift
  return [Y, movingMean.detach(), movingVar.detach()];
}

class BatchNorm extends Module {
  gamma: Tensor;
  beta: Tensor;
  movingMean: Tensor;
  movingVar: Tensor;
  // numFeatures: the number of outputs for a fully connected layer or the number of output
  // channels for a convolutional layer. numDims: 2 for a fully connected layer and 4 for a
  // convolutional layer
  constructor(numFeatures: number, numDims: number) {
    super();
    const shape = numDims === 2 ? [1, numFeatures] : [1, numFeatures, 1, 1];
    // The scale parameter and the shift parameter (model parameters) are initialized to 1
    // and 0, respectively
    this.gamma = this.registerParameter("gamma", Tensor.ones(shape));
    this.beta = this.registerParameter("beta", Tensor.zeros(shape));
    // The variables that are not model parameters are initialized to 0 and 1
    this.movingMean = this.registerBuffer("movingMean", Tensor.zeros(shape));
    this.movingVar = this.registerBuffer("movingVar", Tensor.ones(shape));
  }

  forward(X: Tensor): Tensor {
    // Save the updated movingMean and movingVar
    let Y: Tensor;
    [Y, this.movingMean, this.movingVar] = batchNorm(
      X,
      this.gamma,
      this.beta,
      this.movingMean,
      this.movingVar,
      1e-5,
      0.9,
    );
    return Y;
  }
}

const test = await loadFashionMnist({ split: "test", download: false });

gpuTest(
  "the lecture's BatchNorm trains LeNet under fit() as written, with no keep() (#8)",
  async () => {
    using tr = new DataLoader(test, { batchSize: 64, seed: 1, limit: 512 });
    using te = new DataLoader(test, { batchSize: 128, limit: 256 });
    const scratch = lenet({ norm: (c, rank) => new BatchNorm(c, rank) });
    const builtin = lenet();
    const opts = { epochs: 2, lr: 1.0, init: "xavier" as const, seed: 7, updatesPerEpoch: 4 };
    const a = await fit(scratch, tr, te, opts);
    const b = await fit(builtin, tr, te, opts);
    // Training mode computes the same thing: the same losses, to float32 noise.
    assertClose(
      a.updates.map((u) => u.windowLoss),
      b.updates.map((u) => u.windowLoss),
      { atol: 2e-3, rtol: 2e-3 },
      "per-window training loss, from scratch vs nn.BatchNorm",
    );
    ok(a.epochs[1].loss < a.epochs[0].loss, "it learns");
    // Its moving statistics moved, and prediction (noGrad) mode uses them.
    const mm = await (scratch[1] as BatchNorm).movingMean.toArray();
    ok(mm.some((v) => v !== 0) && mm.every(Number.isFinite), `moving mean ${mm}`);
    equal((scratch[1] as BatchNorm).movingMean.disposed, false);
    const acc = await evaluateAccuracy(scratch, te);
    ok(acc > 0.3, `test accuracy ${acc} with the moving statistics`);
  },
);
