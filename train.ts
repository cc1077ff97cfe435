/**
 * bnlab's training and data: Fashion-MNIST, GPU-resident data loaders, d2l's
 * `train_ch6` training loop (`fit`), evaluation, checkpoints in the safetensors format,
 * and the terminal progress bar. Builds on the core (`mod.ts`), which it re-exports
 * nothing of; import both. Importing it acquires the WebGPU device, as `mod.ts` does, so
 * that its loaders work whichever of the two a program imports first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lenet } from "./mod.ts";
 * import { DataLoader, fit, loadFashionMnist } from "./train.ts";
 * const test = await loadFashionMnist({ split: "test", download: false });
 * using loader = new DataLoader(test, { batchSize: 256, limit: 512 });
 * const net = lenet();
 * const history = await fit(net, loader, loader, { epochs: 1, lr: 1.0, init: "xavier" });
 * assert.ok(history.epochs[0].trainAcc > 0.1);
 * ```
 *
 * @module
 */
import { getDevice } from "./src/gpu/device.ts";

await getDevice(); // a DataLoader made before anything else needs the device

export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_SIZES,
  type FashionMnist,
  loadFashionMnist,
  type LoadFashionMnistOptions,
} from "./src/data/fashion_mnist.ts";
export {
  type Batch,
  DataLoader,
  type DataLoaderOptions,
  type Dataset,
  DeviceDataset,
  epochOrder,
} from "./src/data/loader.ts";
export {
  type DivergenceCause,
  DivergenceError,
  type EpochEvent,
  fit,
  FitInterruptedError,
  type FitOptions,
  type History,
  initXavier,
  type StepEvent,
  type Stop,
  type UpdateEvent,
} from "./src/train/fit.ts";
export { type BatchNormStatsOptions, updateBatchNormStats } from "./src/train/precise_bn.ts";
export { type Gain, gainLabel, RunningStatsFilters } from "./src/train/running_stats.ts";
export {
  evaluateAccuracy,
  type EvaluateOptions,
  type Loader,
  predict,
} from "./src/train/evaluate.ts";
export {
  checkpointArchitecture,
  type DecodeOptions,
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  loadLeNetCheckpoint,
  type LoadOptions,
  type Safetensors,
  SAFETENSORS_MAX_HEADER,
  type SafetensorsDtype,
  type SafetensorsEntry,
  saveCheckpoint,
  type SaveOptions,
} from "./src/train/checkpoint.ts";
export {
  loadTrainingState,
  readTrainingStateMetadata,
  saveTrainingState,
  TRAINING_STATE_FORMAT,
  type TrainingState,
} from "./src/train/training_state.ts";
export { ProgressBar, type ProgressOptions, type ProgressWriter } from "./src/progress/progress.ts";
export { type ExperimentEnvironment, experimentEnvironment } from "./src/train/environment.ts";
// Core classes that the signatures above name, as types (import the values from `mod.ts`).
export type { Module } from "./src/nn/module.ts";
export type { SGD } from "./src/optim/sgd.ts";
export type {
  Hyperparameter,
  Optimizer,
  OptimizerStateDict,
  ParamState,
} from "./src/optim/optimizer.ts";
export type { HasLearningRate, LRScheduler, SchedulerStateDict } from "./src/optim/schedulers.ts";
export type { Sequential } from "./src/nn/sequential.ts";
export type { Architecture } from "./src/models/architecture.ts";
