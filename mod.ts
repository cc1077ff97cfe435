/**
 * bnlab: batch normalization, made visible, on WebGPU. This is the core: GPU tensors
 * with autograd, `nn` layers (BatchNorm as fused WGSL kernels), their functional forms
 * (`F`), `optim.SGD`, LeNet. Training and data live in `train.ts`, charts in `plot.ts`;
 * this module loads neither, nor any npm package.
 *
 * Importing it acquires the WebGPU device (top-level await), so every tensor operation
 * after the import is synchronous; only reading data back (`await t.toArray()`) waits
 * for the GPU.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "./mod.ts";
 * const bn = new nn.BatchNorm2d(3);
 * const x = Tensor.randn([8, 3, 5, 5], { seed: 0 });
 * const y = bn.forward(x); // per-channel zero mean, unit variance
 * const m = await y.mean([0, 2, 3]).toArray();
 * assert.ok(m.every((v) => Math.abs(v) < 1e-5));
 * ```
 *
 * @module
 */
import { getDevice } from "./src/gpu/device.ts";

await getDevice();

export {
  type Dims,
  type FromOptions,
  type NestedArray,
  type RandomOptions,
  Tensor,
  type TensorOptions,
  type UniformOptions,
  type VarianceOptions,
} from "./src/tensor/tensor.ts";
export {
  type BackwardOptions,
  isGradEnabled,
  type Node,
  noGrad,
  type Variable,
} from "./src/tensor/autograd.ts";
export { type Disposable, type DisposeReason, keep, tidy } from "./src/tensor/tidy.ts";
export type { Shape } from "./src/tensor/shape.ts";
export { manualSeed, type RandomState } from "./src/tensor/random.ts";
export { AnomalyError, isAnomalyEnabled, setDetectAnomaly } from "./src/tensor/anomaly.ts";
export { flushOutput, print } from "./src/notebook/print.ts";
export * as gpu from "./src/gpu/mod.ts";
export * as nn from "./src/nn/mod.ts";
export * as F from "./src/nn/functional.ts";
export * as optim from "./src/optim/mod.ts";
export { lenet, type LeNetOptions, type NormFactory } from "./src/models/lenet.ts";
export { type Architecture, architectureOf } from "./src/models/architecture.ts";
// What public signatures name, also at the top level: the classes as values (`new SGD(...)`),
// the same ones as `nn.*` and `optim.*`.
export {
  type BufferOptions,
  type ForwardHook,
  type HookHandle,
  type HostTensor,
  type LoadStateDictOptions,
  Module,
  Sequential,
  type SequentialPass,
  type StateDict,
} from "./src/nn/mod.ts";
export {
  type Hyperparameter,
  Optimizer,
  type OptimizerStateDict,
  type ParamState,
  SGD,
  type SGDOptions,
} from "./src/optim/mod.ts";
