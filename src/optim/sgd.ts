/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay
 * (PyTorch's `torch.optim.SGD`): one WGSL kernel (`sgd.wgsl`) updates every parameter, in
 * flat copies (see {@link Optimizer}).
 *
 * @module
 */
import { grid, launch, uniforms } from "../gpu/queue.ts";
import { placeholder } from "../gpu/placeholder.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type Hyperparameter, Optimizer } from "./optimizer.ts";
import src from "./sgd.wgsl" with { type: "text" };

const WG = 256;

/** Options of {@link SGD}. */
export interface SGDOptions {
  /** Learning rate (required). */
  lr: number;
  /** Momentum factor; 0 (default) is plain SGD. */
  momentum?: number;
  /** Dampening of the gradient's share of the momentum: buf = momentum buf + (1 - dampening) g. Default 0. */
  dampening?: number;
  /** L2 penalty added to the gradient: g = grad + weightDecay * param. Default 0. */
  weightDecay?: number;
  /** Nesterov momentum: step along g + momentum buf. Needs momentum > 0 and dampening 0. Default false. */
  nesterov?: boolean;
}

/**
 * SGD with PyTorch's update rule, per parameter p with gradient grad:
 * g = grad + weightDecay * p; buf = momentum * buf + (1 - dampening) * g (buf = g on the
 * first step); g = g + momentum * buf with Nesterov, else g = buf; p -= lr * g (without
 * momentum, p -= lr * g and no buf). Parameters without a gradient are skipped. Defaults:
 * momentum 0, dampening 0, weightDecay 0, nesterov false; `lr` is required.
 *
 * `step()` never waits for the GPU, and runs one kernel for all the parameters: they are
 * copied, with their gradients, into flat buffers the optimizer owns (each at its own
 * 256-byte-aligned place), updated there in one launch per run of consecutive parameters
 * that the step treats alike (all of them, unless some have no gradient or no momentum yet),
 * and copied back. A buffer-to-buffer copy costs a few microseconds, a launch tens on
 * llvmpipe: LeNet+BN's 18 parameters were 18 launches a step.
 *
 * @example
 * ```ts
 * import { optim, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const w = Tensor.from([1, 2], { requiresGrad: true });
 * const opt = new optim.SGD([w], { lr: 0.1 });
 * w.square().sum().backward(); // grad = 2w
 * opt.step(); // w -= 0.1 * 2w
 * assert.deepEqual(Array.from(await w.toArray()), [0.8, 1.6].map(Math.fround));
 * assert.throws(() => new optim.SGD([w], { lr: 0.1, nesterov: true }), /Nesterov momentum requires a momentum and zero dampening/);
 * ```
 */
export class SGD extends Optimizer {
  /** Momentum factor. */
  readonly momentum: number;
  /** Dampening of the momentum's gradient term. */
  readonly dampening: number;
  /** Weight decay (L2 penalty). */
  readonly weightDecay: number;
  /** Nesterov momentum. */
  readonly nesterov: boolean;

  /** An optimizer of `params` (each needs `requiresGrad`); `lr` is required. */
  constructor(
    params: Iterable<Tensor>,
    { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false }: SGDOptions,
  ) {
    super("SGD", params, lr);
    if (!(momentum >= 0)) throw new Error(`SGD needs momentum >= 0, got ${momentum}`);
    if (!(weightDecay >= 0)) throw new Error(`SGD needs weightDecay >= 0, got ${weightDecay}`);
    if (!Number.isFinite(dampening)) {
      throw new Error(`SGD needs a finite dampening, got ${dampening}`);
    }
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new Error(
        `Nesterov momentum requires a momentum and zero dampening, got momentum ${momentum} ` +
          `and dampening ${dampening}: give momentum > 0 and dampening 0, or nesterov false`,
      );
    }
    this.momentum = momentum;
    this.dampening = dampening;
    this.weightDecay = weightDecay;
    this.nesterov = nesterov;
  }

  /** `momentum_buffer` with momentum, else none. */
  protected stateNames(): readonly string[] {
    return this.momentum !== 0 ? ["momentum_buffer"] : [];
  }

  /** PyTorch's SGD hyperparameters. */
  hyperparameters(): Record<string, Hyperparameter> {
    return {
      lr: this.lr,
      momentum: this.momentum,
      dampening: this.dampening,
      weight_decay: this.weightDecay,
      nesterov: this.nesterov,
    };
  }

  /** Only momentum's first step (buf = g) differs from the others. */
  protected override runKey(step: number): number {
    return this.momentum !== 0 && step === 1 ? 1 : 2;
  }

  /** One `sgd.wgsl` launch. */
  protected update(base4: number, n4: number, step: number): void {
    const useBuf = this.momentum !== 0;
    launch({
      label: "sgd",
      code: src,
      overrides: { WG, MOMENTUM: +useBuf, FIRST: +(step === 1), NESTEROV: +this.nesterov },
      bindings: [
        uniforms({
          n4,
          base4,
          lr: this.lr,
          momentum: this.momentum,
          weight_decay: this.weightDecay,
          dampening: this.dampening,
        }),
        this.buffer("params"),
        this.buffer("grads"),
        useBuf ? this.buffer("momentum_buffer") : placeholder(),
      ],
      workgroups: grid(Math.ceil(n4 / WG)),
    });
  }
}
