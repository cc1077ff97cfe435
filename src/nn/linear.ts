/**
 * `Linear`, the fully connected layer.
 *
 * @module
 */
import { Module } from "./module.ts";
import { Tensor } from "../tensor/tensor.ts";
import { linear } from "../ops/linear/linear.ts";
import { pytorchDefault } from "./init.ts";
import { py } from "./repr.ts";
import { fusibleActivation } from "./fusion.ts";

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Learn an additive bias. Default true. */
  bias?: boolean;
  /** Seed of the initial weights; default: the global generator ({@link manualSeed}). */
  seed?: number;
}

/**
 * Fully connected layer: y = x W^T + b (`torch.nn.Linear`).
 *
 * Parameters: `weight` [outFeatures, inFeatures] and `bias` [outFeatures], both initialised
 * as PyTorch does, from U(-1/sqrt(inFeatures), 1/sqrt(inFeatures)) (`init.pytorchDefault`:
 * the weight from `seed`, the bias from `seed + 1`).
 *
 * Shape: [..., inFeatures] -> [..., outFeatures].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const fc = new nn.Linear(256, 120, { seed: 0 });
 * const y = fc.forward(Tensor.randn([4, 256]));
 * assert.deepEqual(y.shape, [4, 120]);
 * assert.deepEqual(Object.keys(fc.stateDict()), ["weight", "bias"]);
 * ```
 */
export class Linear extends Module {
  /** Weight [outFeatures, inFeatures]. */
  readonly weight: Tensor;
  /** Bias [outFeatures], or null with `{ bias: false }`. */
  readonly bias: Tensor | null;

  /** y = x W^T + b from `inFeatures` to `outFeatures`; weights as PyTorch initialises them. */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true, seed }: LinearOptions = {},
  ) {
    super();
    for (const [name, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 0) {
        throw new Error(`Linear expects ${name} to be a non-negative integer, got ${v}`);
      }
    }
    this.weight = this.registerParameter("weight", Tensor.empty([outFeatures, inFeatures]));
    this.bias = this.registerParameter("bias", bias ? Tensor.empty([outFeatures]) : null);
    pytorchDefault(this.weight, this.bias, { seed });
  }

  /** PyTorch's: `in_features=400, out_features=120, bias=True`. */
  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${
      py(this.bias !== null)
    }`;
  }

  /** y = x W^T + b. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  /**
   * Linear followed by a plain Sigmoid or ReLU as one kernel each way (`linear(..., {
   * activation })`, see {@link Module.fusedWith}); null for any other pair, or when either
   * module's `forward` is not its class's own (a forward hook, a subclass).
   */
  override fusedWith(next: Module): ((x: Tensor) => Tensor) | null {
    if (this.forward !== Linear.prototype.forward) return null;
    const activation = fusibleActivation(next);
    return activation ? (x) => linear(x, this.weight, this.bias, { activation }) : null;
  }
}
