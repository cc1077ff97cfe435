/**
 * `GroupNorm`, with PyTorch's semantics: statistics over groups of channels within each
 * example, learnable per-channel `weight` and `bias`, the same computation in training and
 * eval mode. It hands off to the functional {@link groupNorm} (fused WGSL).
 *
 * @module
 */
import { checkNormOptions } from "./norm_options.ts";
import { Module } from "./module.ts";
import { py, pyFloat } from "./repr.ts";
import { checkTensor, Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";
import { groupNorm } from "../ops/block_norm/block_norm.ts";

/** Options of {@link GroupNorm}, as PyTorch's keywords. */
export interface GroupNormLayerOptions {
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** Learnable per-channel `weight` (ones) and `bias` (zeros). Default true. */
  affine?: boolean;
}

/**
 * Group normalization (Wu & He 2018), as `torch.nn.GroupNorm`: the channels of each
 * example are split into `numGroups` groups of consecutive channels, and each group is
 * normalized over its channels and all positions with its own mean and biased variance,
 * then scaled and shifted per channel:
 *
 *     y[n, c, ...] = (x - E[x]) / sqrt(Var[x] + eps) * weight[c] + bias[c]
 *
 * E and Var over the group of c in example n. The statistics never mix examples, so the
 * output does not depend on the batch (a batch of one works, as small as batch norm
 * struggles: Wu & He report ResNet-50 error steady at 24.0-24.2% from 32 down to 2 images
 * per GPU, where batch norm climbs from 23.6% to 34.7%), there are no running statistics,
 * and training and eval mode compute the same thing. `numGroups = 1` is LayerNorm over
 * (C, H, W) with a per-channel affine map; `numGroups = numChannels` is InstanceNorm.
 * Defaults: eps 1e-5, affine true (weight ones, bias zeros).
 *
 * Shape: input [N, C, *] with C = numChannels, output the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const gn = new nn.GroupNorm(2, 6); // groups of 3 channels
 * const x = Tensor.randn([4, 6, 5, 5], { seed: 0 }).mul(3).add(1);
 * const y = await gn.forward(x).toArray();
 * // Each (example, group) block of 3 * 25 = 75 values has mean 0 and variance 1.
 * for (let i = 0; i < y.length; i += 75) {
 *   const block = y.slice(i, i + 75);
 *   const mean = block.reduce((a, b) => a + b) / 75;
 *   const meanSq = block.reduce((a, b) => a + b * b, 0) / 75;
 *   assert.ok(Math.abs(mean) < 1e-5 && Math.abs(meanSq - 1) < 1e-3);
 * }
 * assert.deepEqual(Object.keys(gn.stateDict()), ["weight", "bias"]);
 * ```
 */
export class GroupNorm extends Module {
  /** G, the number of groups the channels are split into. */
  readonly numGroups: number;
  /** C, the number of channels expected in the input. */
  readonly numChannels: number;
  /** Added to the variance before the square root. */
  eps: number;
  /** Whether `weight` and `bias` exist. */
  readonly affine: boolean;
  /** gamma, shape [C], ones (null when `affine` is false). */
  readonly weight: Tensor | null;
  /** beta, shape [C], zeros (null when `affine` is false). */
  readonly bias: Tensor | null;

  /**
   * A layer normalizing `numChannels` channels in `numGroups` groups (numChannels must be
   * divisible by numGroups), with per-channel `weight` ones and `bias` zeros unless
   * `affine` is false.
   */
  constructor(numGroups: number, numChannels: number, opts: GroupNormLayerOptions = {}) {
    super();
    for (const [name, v] of [["numGroups", numGroups], ["numChannels", numChannels]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(`GroupNorm needs a positive integer ${name}, got ${v}`);
      }
    }
    if (numChannels % numGroups !== 0) {
      throw new Error(
        `GroupNorm: numChannels must be divisible by numGroups, got numChannels ${numChannels} ` +
          `and numGroups ${numGroups}; pick numGroups among the divisors of ${numChannels}`,
      );
    }
    const { eps = 1e-5, affine = true } = opts;
    checkNormOptions("GroupNorm", eps);
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = eps;
    this.affine = affine;
    this.weight = this.registerParameter("weight", affine ? Tensor.ones([numChannels]) : null);
    this.bias = this.registerParameter("bias", affine ? Tensor.zeros([numChannels]) : null);
  }

  /** PyTorch's: `2, 6, eps=1e-05, affine=True`. */
  override extraRepr(): string {
    return `${this.numGroups}, ${this.numChannels}, eps=${pyFloat(this.eps)}, affine=${
      py(this.affine)
    }`;
  }

  /** Normalizes each example of `x` ([N, C, *]) over its groups of channels. */
  forward(x: Tensor): Tensor {
    checkTensor(`${this.constructor.name}.forward`, "input", x);
    const name = `GroupNorm(${this.numGroups}, ${this.numChannels})`;
    if (x.rank < 2) {
      throw new Error(
        `${name} expects input with at least 2 dimensions [N, C, *], got ${fmt(x.shape)}`,
      );
    }
    if (x.shape[1] !== this.numChannels) {
      throw new Error(`${name} expects ${this.numChannels} channels, got input ${fmt(x.shape)}`);
    }
    return groupNorm(x, this.numGroups, this.weight, this.bias, { eps: this.eps });
  }
}
