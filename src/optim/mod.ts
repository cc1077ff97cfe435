/**
 * Optimizers and learning-rate schedulers, as `torch.optim`: `SGD` (momentum, dampening,
 * Nesterov), `Adam` and `AdamW`, each one WGSL kernel over flat copies of the parameters
 * with a PyTorch-shaped state dict; `StepLR` and `CosineAnnealingLR`.
 *
 * @module
 */
export {
  type Hyperparameter,
  Optimizer,
  type OptimizerStateDict,
  type ParamState,
} from "./optimizer.ts";
export { SGD, type SGDOptions } from "./sgd.ts";
export { Adam, type AdamOptions, AdamW } from "./adam.ts";
export {
  CosineAnnealingLR,
  type HasLearningRate,
  LRScheduler,
  type SchedulerStateDict,
  StepLR,
} from "./schedulers.ts";
