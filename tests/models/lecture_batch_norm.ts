/**
 * The lecture's `batch_norm` function and `BatchNorm` class (d2l, "Batch Normalization"),
 * written line for line with bnlab tensor ops, comments included: the tests that hold them
 * to `nn.BatchNorm2d`/`nn.BatchNorm1d` and train LeNet with them import them from here.
 *
 * @module
 */
import { Tensor } from "../../src/tensor/tensor.ts";
import { isGradEnabled } from "../../src/tensor/autograd.ts";
import { Module } from "../../src/nn/module.ts";

/** d2l's batch_norm: `torch.is_grad_enabled()` tells training from prediction. */
export function batchNorm(
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

/** d2l's BatchNorm layer: the moving statistics are reassigned at every step. */
export class BatchNorm extends Module {
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
