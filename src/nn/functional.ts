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

import {
  batchNorm as batchNormOp,
  batchNormMaxPool2d as batchNormMaxPool2dOp,
  type BatchNormOptions,
} from "../ops/batch_norm/batch_norm.ts";
import { layerNorm as layerNormOp, type LayerNormOptions } from "../ops/layer_norm/layer_norm.ts";
import {
  ghostBatchNorm as ghostBatchNormOp,
  type GhostBatchNormOptions,
  groupNorm as groupNormOp,
  type GroupNormOptions,
} from "../ops/block_norm/block_norm.ts";
import { conv2d as conv2dOp, type Conv2dOptions } from "../ops/conv2d/conv2d.ts";
import {
  avgPool2d as avgPool2dOp,
  maxPool2d as maxPool2dOp,
  type MaxPool2dOptions,
  type Pool2dOptions,
} from "../ops/pool/pool.ts";
import { linear as linearOp, type LinearOptions } from "../ops/linear/linear.ts";
import { dropout as dropoutOp, type DropoutOptions } from "../ops/dropout/dropout.ts";
import {
  countCorrect as countCorrectOp,
  crossEntropy as crossEntropyOp,
  type CrossEntropyOptions,
} from "../ops/cross_entropy/cross_entropy.ts";

export type {
  BatchNormOptions,
  Conv2dOptions,
  CrossEntropyOptions,
  DropoutOptions,
  GhostBatchNormOptions,
  GroupNormOptions,
  LayerNormOptions,
  LinearOptions,
  MaxPool2dOptions,
  Pool2dOptions,
};
export * from "../ops/cross_entropy/target_error.ts";

// The ops, declared here (each calls its op in src/ops/, where its full documentation and
// float64 reference live) so that deno doc lists them in F: it lists no member that a
// namespace re-exports by name.

/**
 * Batch normalization (`torch.nn.functional.batch_norm`): with `training` the batch's
 * statistics per channel, the running ones updated in place; else the running statistics.
 * Fused kernels, with an optional activation (`opts.activation`).
 */
export function batchNorm(
  inp: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: BatchNormOptions = {},
): Tensor {
  return batchNormOp(inp, runningMean, runningVar, weight, bias, opts);
}

/**
 * Batch normalization, its optional activation, then 2x2 max pooling of stride 2:
 * `maxPool2d(batchNorm(x, ..., opts), 2)`, with the normalized values never stored where a
 * fused kernel exists (`nn.Sequential` runs it for BatchNorm2d, Sigmoid or ReLU, MaxPool2d(2)).
 */
export function batchNormMaxPool2d(
  inp: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: BatchNormOptions = {},
): Tensor {
  return batchNormMaxPool2dOp(inp, runningMean, runningVar, weight, bias, opts);
}

/** Layer normalization over the last dimensions `normalizedShape` (`F.layer_norm`). */
export function layerNorm(
  inp: Tensor,
  normalizedShape: number | readonly number[],
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: LayerNormOptions = {},
): Tensor {
  return layerNormOp(inp, normalizedShape, weight, bias, opts);
}

/** Batch normalization over ghost batches of `opts.virtualBatchSize` examples each. */
export function ghostBatchNorm(
  inp: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: GhostBatchNormOptions = {},
): Tensor {
  return ghostBatchNormOp(inp, runningMean, runningVar, weight, bias, opts);
}

/** Group normalization over `numGroups` groups of channels (`F.group_norm`). */
export function groupNorm(
  inp: Tensor,
  numGroups: number,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: GroupNormOptions = {},
): Tensor {
  return groupNormOp(inp, numGroups, weight, bias, opts);
}

/** 2-D convolution (`F.conv2d`): input [N, C, H, W], weight [O, C, KH, KW], bias [O]. */
export function conv2d(
  inp: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: Conv2dOptions = {},
): Tensor {
  return conv2dOp(inp, weight, bias, opts);
}

/** 2-D average pooling (`F.avg_pool2d`). */
export function avgPool2d(
  inp: Tensor,
  kernelSize: number | readonly [number, number],
  opts: Pool2dOptions = {},
): Tensor {
  return avgPool2dOp(inp, kernelSize, opts);
}

/** 2-D max pooling (`F.max_pool2d`), with an optional activation applied first. */
export function maxPool2d(
  inp: Tensor,
  kernelSize: number | readonly [number, number],
  opts: MaxPool2dOptions = {},
): Tensor {
  return maxPool2dOp(inp, kernelSize, opts);
}

/** y = x W^T + b (`F.linear`): input [N, in], weight [out, in], bias [out]. */
export function linear(
  inp: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: LinearOptions = {},
): Tensor {
  return linearOp(inp, weight, bias, opts);
}

/** Zeroes each element with probability `p` and scales the rest by 1 / (1 - p) (`F.dropout`). */
export function dropout(inp: Tensor, p: number, opts: DropoutOptions = {}): Tensor {
  return dropoutOp(inp, p, opts);
}

/** How many rows of `logits` have their largest value at `target` (a 0-d tensor). */
export function countCorrect(logits: Tensor, target: Tensor): Tensor {
  return countCorrectOp(logits, target);
}

/** The mean cross-entropy of `logits` [N, C] against class indices `target` [N] (`F.cross_entropy`). */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  return crossEntropyOp(logits, target, opts);
}

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
