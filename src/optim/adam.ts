/**
 * Adam and AdamW (PyTorch's `torch.optim.Adam` and `torch.optim.AdamW`): one WGSL kernel
 * (`adam.wgsl`) updates every parameter, in flat copies (see {@link Optimizer}).
 *
 * @module
 */
import { grid, launch, uniforms } from "../gpu/queue.ts";
import { placeholder } from "../gpu/placeholder.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type Hyperparameter, Optimizer } from "./optimizer.ts";
import src from "./adam.wgsl" with { type: "text" };

const WG = 256;

/** Options of {@link Adam} and {@link AdamW}. */
export interface AdamOptions {
  /** Learning rate. Default 1e-3. */
  lr?: number;
  /** Decay rates of the first and second moment averages. Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Added to the denominator's square root. Default 1e-8. */
  eps?: number;
  /** Weight decay: L2 added to the gradient (Adam, default 0) or decoupled (AdamW, default 1e-2). */
  weightDecay?: number;
  /** Step with the largest second moment seen so far (AMSGrad). Default false. */
  amsgrad?: boolean;
}

/**
 * Adam with PyTorch's update rule, per parameter p with gradient grad at its step t:
 *
 *     g = grad + weightDecay p
 *     m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2     (both 0 before step 1)
 *     p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * with v replaced by its running maximum under `amsgrad`. Defaults as PyTorch: lr 1e-3,
 * betas [0.9, 0.999], eps 1e-8, weightDecay 0, amsgrad false. Parameters without a
 * gradient are skipped (and do not count the step). One kernel launch per step for all
 * the parameters (see {@link Optimizer}).
 *
 * @example
 * ```ts
 * import { optim, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const w = Tensor.from([1, -2], { requiresGrad: true });
 * const opt = new optim.Adam([w], { lr: 0.1 });
 * w.square().sum().backward();
 * opt.step(); // the first step moves each weight by about lr, against its gradient's sign
 * assert.deepEqual(Array.from(await w.toArray(), (v) => v.toFixed(4)), ["0.9000", "-1.9000"]);
 * ```
 */
export class Adam extends Optimizer {
  /** Decay rates of the moment averages. */
  readonly betas: readonly [number, number];
  /** Added to the denominator. */
  readonly eps: number;
  /** Weight decay. */
  readonly weightDecay: number;
  /** Whether the running maximum of v is used. */
  readonly amsgrad: boolean;
  /** AdamW: the decay multiplies the parameter instead of joining the gradient. */
  protected readonly decoupled: boolean = false;

  /** An optimizer of `params` (each needs `requiresGrad`). */
  constructor(params: Iterable<Tensor>, opts: AdamOptions = {}) {
    const name = new.target.name;
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, amsgrad = false } = opts;
    const weightDecay = opts.weightDecay ?? (name === "AdamW" ? 1e-2 : 0);
    super(name, params, lr);
    if (!(eps >= 0)) throw new Error(`${name} needs eps >= 0, got ${eps}`);
    betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) {
        throw new Error(`${name} needs betas in [0, 1), got betas[${i}] = ${b}`);
      }
    });
    if (!(weightDecay >= 0)) throw new Error(`${name} needs weightDecay >= 0, got ${weightDecay}`);
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.amsgrad = amsgrad;
  }

  /** `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` with amsgrad. */
  protected stateNames(): readonly string[] {
    return this.amsgrad ? ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] : ["exp_avg", "exp_avg_sq"];
  }

  /** PyTorch's Adam hyperparameters. */
  hyperparameters(): Record<string, Hyperparameter> {
    return {
      lr: this.lr,
      betas: [...this.betas],
      eps: this.eps,
      weight_decay: this.weightDecay,
      amsgrad: this.amsgrad,
    };
  }

  /** One `adam.wgsl` launch, the bias corrections for `step` computed here in float64. */
  protected update(base4: number, n4: number, step: number): void {
    const [beta1, beta2] = this.betas;
    launch({
      label: this.decoupled ? "adamw" : "adam",
      code: src,
      overrides: { WG, DECOUPLED: +this.decoupled, AMSGRAD: +this.amsgrad },
      bindings: [
        uniforms({
          n4,
          base4,
          lr: this.lr,
          beta1,
          beta2,
          eps: this.eps,
          weight_decay: this.weightDecay,
          step_size: this.lr / (1 - beta1 ** step),
          bc2_sqrt: Math.sqrt(1 - beta2 ** step),
          first: +(step === 1),
        }),
        this.buffer("params"),
        this.buffer("grads"),
        this.buffer("exp_avg"),
        this.buffer("exp_avg_sq"),
        this.amsgrad ? this.buffer("max_exp_avg_sq") : placeholder(),
      ],
      workgroups: grid(Math.ceil(n4 / WG)),
    });
  }
}

/**
 * AdamW (PyTorch's `torch.optim.AdamW`): Adam with decoupled weight decay,
 * p *= 1 - lr weightDecay before the Adam step on the plain gradient (Loshchilov & Hutter).
 * Defaults as PyTorch: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 1e-2, amsgrad false.
 *
 * @example
 * ```ts
 * import { optim, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const w = Tensor.from([1], { requiresGrad: true });
 * const opt = new optim.AdamW([w], { lr: 0.1, weightDecay: 0.5 });
 * assert.equal(opt.hyperparameters().weight_decay, 0.5);
 * w.mul(0).sum().backward(); // a zero gradient: only the decay moves w
 * opt.step();
 * assert.equal((await w.item()).toFixed(4), "0.9500");
 * ```
 */
export class AdamW extends Adam {
  /** Decoupled weight decay. */
  protected override readonly decoupled: boolean = true;
}
