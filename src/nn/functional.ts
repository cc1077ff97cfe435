/**
 * The functional forms of the layers, as `torch.nn.functional` (`F`): stateless
 * functions of tensors that the `nn` modules hand off to, each a fused WGSL kernel with
 * its backward.
 *
 * @example
 * ```ts
 * import { F, Tensor } from "../../mod.ts";
 * const x = Tensor.randn([4, 3, 8, 8], { seed: 0 });
 * const y = F.relu(F.batchNorm(x, null, null, null, null, { training: true }));
 * console.log(y.shape); // [4, 3, 8, 8]
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
 * import { F, Tensor } from "../../mod.ts";
 * console.log(await F.relu(Tensor.from([-2, 0, 3])).toArray()); // Float32Array [0, 0, 3]
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
 * import { F, Tensor } from "../../mod.ts";
 * console.log(await F.sigmoid(Tensor.from([0])).toArray()); // Float32Array [0.5]
 * ```
 */
export function sigmoid(x: Tensor): Tensor {
  checkTensor("sigmoid", "input", x);
  return x.sigmoid();
}
