/**
 * Optimizers and learning-rate schedulers, as `torch.optim`: `SGD` (momentum, dampening,
 * Nesterov), `Adam` and `AdamW`, each one WGSL kernel over flat copies of the parameters
 * with a PyTorch-shaped state dict; `StepLR` and `CosineAnnealingLR`.
 *
 * @module
 */
export * from "./optimizer.ts";
export * from "./sgd.ts";
export * from "./adam.ts";
export * from "./schedulers.ts";
