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
