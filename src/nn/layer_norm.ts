/**
 * `LayerNorm`, with PyTorch's semantics: statistics over the last dims of each example,
 * learnable elementwise `weight` and `bias`, the same computation in training and eval
 * mode. It hands off to the functional {@link layerNorm} (fused WGSL).
 *
 * @module
 */
import { checkNormOptions } from "./norm_options.ts";
import { Module } from "./module.ts";
import { py, pyFloat } from "./repr.ts";
import { checkTensor, Tensor } from "../tensor/tensor.ts";
import { checkShape, fmt } from "../tensor/shape.ts";
import { layerNorm } from "../ops/layer_norm/layer_norm.ts";

/** Options of {@link LayerNorm}, as PyTorch's keywords. */
export interface LayerNormLayerOptions {
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** Learnable elementwise `weight` (ones) and `bias` (zeros). Default true. */
  elementwiseAffine?: boolean;
}

/**
 * Layer normalization over the last `normalizedShape.length` dims of each example, as
 * `torch.nn.LayerNorm`:
 *
 *     y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias
 *
 * E and Var (biased) are taken over the normalized dims of one example, so they never
 * mix examples: unlike batch norm the output does not depend on the batch (a batch of
 * one works), there are no running statistics, and training and eval mode compute the
 * same thing. `weight` and `bias` have shape `normalizedShape` and act elementwise.
 * Defaults: eps 1e-5, elementwiseAffine true (weight ones, bias zeros).
 *
 * Shape: input [*, ...normalizedShape], output the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const ln = new nn.LayerNorm([3, 4, 4]);
 * const x = Tensor.randn([2, 3, 4, 4], { seed: 0 }).mul(5).add(3);
 * const y = await ln.forward(x).toArray();
 * // Each example now has mean 0 and variance 1 over its 48 values.
 * for (const row of [y.slice(0, 48), y.slice(48)]) {
 *   const mean = row.reduce((a, b) => a + b) / 48;
 *   const meanSq = row.reduce((a, b) => a + b * b, 0) / 48;
 *   assert.ok(Math.abs(mean) < 1e-5 && Math.abs(meanSq - 1) < 1e-3);
 * }
 * assert.deepEqual(Object.keys(ln.stateDict()), ["weight", "bias"]);
 * ```
 */
export class LayerNorm extends Module {
  /** The trailing shape normalized over, e.g. [6, 24, 24]. */
  readonly normalizedShape: readonly number[];
  /** Added to the variance before the square root. */
  eps: number;
  /** Whether `weight` and `bias` exist. */
  readonly elementwiseAffine: boolean;
  /** gamma, shape normalizedShape, ones (null when `elementwiseAffine` is false). */
  readonly weight: Tensor | null;
  /** beta, shape normalizedShape, zeros (null when `elementwiseAffine` is false). */
  readonly bias: Tensor | null;
  #name: string;

  /**
   * A layer normalizing over the trailing `normalizedShape` (a number means `[n]`), with
   * `weight` ones and `bias` zeros of that shape unless `elementwiseAffine` is false.
   */
  constructor(normalizedShape: number | readonly number[], opts: LayerNormLayerOptions = {}) {
    super();
    const shape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    this.#name = `LayerNorm(${typeof normalizedShape === "number" ? shape[0] : fmt(shape)})`;
    checkShape(shape, `${this.#name} normalizedShape`);
    if (shape.length === 0 || shape.some((d) => d < 1)) {
      throw new Error(
        `LayerNorm needs a non-empty normalizedShape of positive sizes, got ${fmt(shape)}`,
      );
    }
    const { eps = 1e-5, elementwiseAffine = true } = opts;
    checkNormOptions(this.#name, eps);
    this.normalizedShape = Object.freeze(shape);
    this.eps = eps;
    this.elementwiseAffine = elementwiseAffine;
    this.weight = this.registerParameter("weight", elementwiseAffine ? Tensor.ones(shape) : null);
    this.bias = this.registerParameter("bias", elementwiseAffine ? Tensor.zeros(shape) : null);
  }

  /** PyTorch's: `(6, 24, 24), eps=1e-05, elementwise_affine=True`. */
  override extraRepr(): string {
    return `${py(this.normalizedShape)}, eps=${pyFloat(this.eps)}, elementwise_affine=${
      py(this.elementwiseAffine)
    }`;
  }

  /** Normalizes each example of `x` over its trailing `normalizedShape` dims. */
  forward(x: Tensor): Tensor {
    checkTensor(`${this.constructor.name}.forward`, "input", x);
    const k = this.normalizedShape.length;
    const tail = x.shape.slice(Math.max(x.rank - k, 0));
    if (x.rank < k || tail.some((d, i) => d !== this.normalizedShape[i])) {
      throw new Error(
        `${this.#name} expects input ending in ${fmt(this.normalizedShape)}, got ${fmt(x.shape)}`,
      );
    }
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, { eps: this.eps });
  }
}
