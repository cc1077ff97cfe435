/**
 * The functional forms of the layers, as `torch.nn.functional` (`F`): stateless
 * functions of tensors that the `nn` modules hand off to, each a fused WGSL kernel with
 * its backward.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../mod.ts";
 * const x = Tensor.randn([4, 3, 8, 8], { seed: 0 });
 * const y = F.relu(F.batchNorm(x, null, null, null, null, { training: true }));
 * assert.deepEqual(y.shape, [4, 3, 8, 8]);
 * ```
 *
 * @module
 */
import { checkTensor, type Tensor } from "../tensor/tensor.ts";

export { batchNorm, type BatchNormOptions } from "../ops/batch_norm/batch_norm.ts";
export { layerNorm, type LayerNormOptions } from "../ops/layer_norm/layer_norm.ts";
export {
  ghostBatchNorm,
  type GhostBatchNormOptions,
  groupNorm,
  type GroupNormOptions,
} from "../ops/block_norm/block_norm.ts";
export { conv2d, type Conv2dOptions } from "../ops/conv2d/conv2d.ts";
export { avgPool2d, maxPool2d, type Pool2dOptions } from "../ops/pool/pool.ts";
export { linear } from "../ops/linear/linear.ts";
export { dropout, type DropoutOptions } from "../ops/dropout/dropout.ts";
export {
  countCorrect,
  crossEntropy,
  type CrossEntropyOptions,
  TargetError,
} from "../ops/cross_entropy/cross_entropy.ts";

/**
 * Rectified linear unit, `x.relu()`: max(x, 0), one fused kernel each way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../mod.ts";
 * assert.deepEqual(Array.from(await F.relu(Tensor.from([-2, 0, 3])).toArray()), [0, 0, 3]);
 * ```
 */
export function relu(x: Tensor): Tensor {
  checkTensor("relu", "input", x);
  return x.relu();
}

/**
 * Logistic sigmoid, `x.sigmoid()`: 1 / (1 + exp(-x)), one fused kernel each way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../mod.ts";
 * assert.deepEqual(Array.from(await F.sigmoid(Tensor.from([0])).toArray()), [0.5]);
 * ```
 */
export function sigmoid(x: Tensor): Tensor {
  checkTensor("sigmoid", "input", x);
  return x.sigmoid();
}

/**
 * Hyperbolic tangent, `x.tanh()` (composed as 2 sigmoid(2x) - 1; see {@link Tensor.tanh}).
 *
 * @example
 * ```ts
 * import { F, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(Array.from(await F.tanh(Tensor.from([0, 50])).toArray()), [0, 1]);
 * ```
 */
export function tanh(x: Tensor): Tensor {
  return x.tanh();
}

/**
 * Softmax along `dim`, `x.softmax(dim)` (PyTorch's `F.softmax(x, dim)`).
 *
 * @example
 * ```ts
 * import { F, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(Array.from(await F.softmax(Tensor.from([[1, 1]]), 1).toArray()), [0.5, 0.5]);
 * ```
 */
export function softmax(x: Tensor, dim: number): Tensor {
  return x.softmax(dim);
}

/**
 * Log-softmax along `dim`, `x.logSoftmax(dim)` (PyTorch's `F.log_softmax(x, dim)`).
 *
 * @example
 * ```ts
 * import { F, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const y = await F.logSoftmax(Tensor.from([0, 0]), 0).toArray();
 * assert.deepEqual(Array.from(y), [-Math.LN2, -Math.LN2].map(Math.fround));
 * ```
 */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return x.logSoftmax(dim);
}
