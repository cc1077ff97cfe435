/**
 * bnlab: batch normalization, made visible, on WebGPU.
 *
 * A small PyTorch-shaped library: GPU tensors with autograd, `nn` layers with
 * BatchNorm/LayerNorm as fused WGSL kernels. Every kernel runs on `navigator.gpu`.
 * Importing this module acquires the WebGPU device (top-level await), so every
 * tensor operation after the import is synchronous; only reading data back
 * (`await t.toArray()`) waits for the GPU.
 *
 * @example
 * ```ts
 * import { nn, Tensor } from "./mod.ts";
 * const bn = new nn.BatchNorm2d(3);
 * const x = Tensor.randn([8, 3, 5, 5], { seed: 0 });
 * const y = bn.forward(x); // per-channel zero mean, unit variance
 * const m = await y.mean([0, 2, 3]).toArray();
 * console.log(m.every((v) => Math.abs(v) < 1e-5)); // true
 * ```
 *
 * @module
 */
import { getDevice } from "./src/gpu/device.ts";

await getDevice();

export {
  type NestedArray,
  type RandomOptions,
  Tensor,
  type TensorOptions,
} from "./src/tensor/tensor.ts";
export { noGrad } from "./src/tensor/autograd.ts";
export { keep, tidy } from "./src/tensor/tidy.ts";
export { manualSeed } from "./src/tensor/random.ts";
export * as gpu from "./src/gpu/mod.ts";
export * as nn from "./src/nn/mod.ts";
export * as optim from "./src/optim/mod.ts";
export { batchNorm } from "./src/ops/batch_norm/batch_norm.ts";
export { layerNorm } from "./src/ops/layer_norm/layer_norm.ts";
export { conv2d } from "./src/ops/conv2d/conv2d.ts";
export { avgPool2d, maxPool2d } from "./src/ops/pool/pool.ts";
export { linear } from "./src/ops/matmul/matmul.ts";
export { relu, sigmoid } from "./src/ops/activation/activation.ts";
export { countCorrect, crossEntropy } from "./src/ops/cross_entropy/cross_entropy.ts";
export { dropout } from "./src/ops/dropout/dropout.ts";
export {
  FASHION_MNIST_CLASSES,
  type FashionMnist,
  loadFashionMnist,
  type LoadFashionMnistOptions,
} from "./src/data/fashion_mnist.ts";
export {
  type Batch,
  DataLoader,
  type DataLoaderOptions,
  type Dataset,
  epochOrder,
} from "./src/data/loader.ts";
export { ProgressBar, type ProgressOptions, type ProgressWriter } from "./src/cli/progress.ts";
export { lenet, type LeNetOptions } from "./src/models/lenet.ts";
export {
  type EpochEvent,
  fit,
  type FitOptions,
  type History,
  initXavier,
  type UpdateEvent,
} from "./src/train/fit.ts";
export { evaluateAccuracy, type Loader, predict } from "./src/train/evaluate.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  saveCheckpoint,
} from "./src/train/checkpoint.ts";
export { curvesDisplay, curvesPng, curvesSvg, LiveCurves } from "./src/plot/curves.ts";
