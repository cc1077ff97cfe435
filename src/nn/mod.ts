/**
 * Neural-network modules, PyTorch-shaped.
 *
 * @module
 */
export { type HostTensor, Module, type StateDict } from "./module.ts";
export { BatchNorm1d, BatchNorm2d, BatchNormBase, type BatchNormOptions } from "./batch_norm.ts";
export { LayerNorm, type LayerNormOptions } from "./layer_norm.ts";
export { Conv2d, type Conv2dOptions } from "./conv.ts";
export { AvgPool2d, MaxPool2d, type Pool2dOptions } from "./pooling.ts";
export { Linear, type LinearOptions } from "./linear.ts";
export { ReLU, Sigmoid } from "./activation.ts";
export { Flatten } from "./flatten.ts";
export { Dropout, type DropoutOptions } from "./dropout.ts";
export { Sequential } from "./sequential.ts";
export { CrossEntropyLoss } from "./loss.ts";
export * as init from "./init.ts";
