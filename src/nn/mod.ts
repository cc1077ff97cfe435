/**
 * Neural-network modules, PyTorch-shaped: `Module` and the layers, with PyTorch's names,
 * defaults and state-dict keys; `functional` holds their stateless forms (also exported
 * as `F`), `init` the parameter initialisers.
 *
 * @module
 */
export {
  type BufferOptions,
  type ForwardHook,
  type HookHandle,
  type HostTensor,
  type LoadStateDictOptions,
  Module,
  type StateDict,
} from "./module.ts";
export {
  BatchNorm1d,
  BatchNorm2d,
  BatchNormBase,
  type BatchNormLayerOptions,
} from "./batch_norm.ts";
export { LayerNorm, type LayerNormLayerOptions } from "./layer_norm.ts";
export { GroupNorm, type GroupNormLayerOptions } from "./group_norm.ts";
export { GhostBatchNorm, type GhostBatchNormLayerOptions } from "./ghost_batch_norm.ts";
export { Conv2d, type Conv2dLayerOptions } from "./conv.ts";
export { AvgPool2d, MaxPool2d } from "./pooling.ts";
export { Linear, type LinearOptions } from "./linear.ts";
export { ReLU, Sigmoid } from "./activation.ts";
export { Flatten } from "./flatten.ts";
export { ChannelNoise, type ChannelNoiseOptions } from "./channel_noise.ts";
export { Dropout, type DropoutLayerOptions } from "./dropout.ts";
export { Sequential, type SequentialPass } from "./sequential.ts";
export { CrossEntropyLoss } from "./loss.ts";
export * as functional from "./functional.ts";
export * as init from "./init.ts";
