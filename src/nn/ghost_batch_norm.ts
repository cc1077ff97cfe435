/**
 * `GhostBatchNorm` (Hoffer et al. 2017): batch normalization whose training-mode
 * statistics come from consecutive "ghost" batches of a fixed size within each batch.
 * Parameters, buffers and state-dict names are BatchNorm's; in training mode it hands off
 * to the functional {@link ghostBatchNorm} (fused WGSL), in eval mode to batch norm with
 * the running statistics.
 *
 * @module
 */
import { BatchNormBase, type BatchNormLayerOptions } from "./batch_norm.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";
import { ghostBatchNorm } from "../ops/block_norm/block_norm.ts";

/** Options of {@link GhostBatchNorm}: BatchNorm's, and the ghost batch size. */
export interface GhostBatchNormLayerOptions extends BatchNormLayerOptions {
  /**
   * Examples per ghost batch in training mode; the last ghost batch of a batch holds the
   * remainder when this does not divide the batch size. Default 32.
   */
  virtualBatchSize?: number;
}

/**
 * Ghost batch normalization (Hoffer et al. 2017, "Train longer, generalize better"), for
 * inputs [N, C], [N, C, L] or [N, C, H, W]: in training mode the batch is split into
 * consecutive ghost batches of `virtualBatchSize` examples (the last one holds the
 * remainder: N = 70 with 32 gives 32, 32, 6), and each is normalized per channel with its
 * own statistics, so that a large batch keeps the regularizing noise of small ones:
 *
 *     y = (x - E_g[x]) / sqrt(Var_g[x] + eps) * weight + bias
 *
 * E_g and Var_g (biased) over ghost batch g: its examples and all positions, per channel.
 * A last ghost batch of one example is refused when it holds one value per channel (an
 * [N, C] input), as BatchNorm refuses a batch of one.
 *
 * Running statistics are updated once per training step with BatchNorm's momentum rule,
 * `running = (1 - momentum) * running + momentum * stat` (momentum null: the cumulative
 * average), where stat is the mean of the whole batch for `runningMean`, and for
 * `runningVar` the pooled within-ghost-batch variance sum_g M2_g / sum_g (m_g - 1) (M2_g
 * the sum of squared deviations of ghost batch g from its own mean, m_g its values per
 * channel): with equal ghost batches, the average of their unbiased variances. In eval
 * mode the running statistics normalize, exactly as BatchNorm. `virtualBatchSize >= N` is
 * BatchNorm in every respect. Defaults: virtualBatchSize 32, eps 1e-5, momentum 0.1,
 * affine true, trackRunningStats true (without running statistics, eval mode uses ghost
 * batches too).
 *
 * Shape: input [N, C], [N, C, L] or [N, C, H, W], output the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const gbn = new nn.GhostBatchNorm(3, { virtualBatchSize: 4 });
 * const x = Tensor.randn([8, 3, 5, 5], { seed: 0 }).mul(2).add(1);
 * const y = await gbn.forward(x).toArray();
 * // Each ghost batch (4 examples) has per-channel mean 0: here channel 0 of the first.
 * let sum = 0;
 * for (let n = 0; n < 4; n++) for (let s = 0; s < 25; s++) sum += y[n * 75 + s];
 * assert.ok(Math.abs(sum / 100) < 1e-5);
 * assert.equal(await gbn.numBatchesTracked!.item(), 1);
 * assert.deepEqual(Object.keys(gbn.stateDict()),
 *   ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
 * ```
 */
export class GhostBatchNorm extends BatchNormBase {
  /** Examples per ghost batch in training mode. */
  virtualBatchSize: number;

  /** A layer for `numFeatures` channels; see the class doc for the options. */
  constructor(numFeatures: number, opts: GhostBatchNormLayerOptions = {}) {
    super(numFeatures, opts);
    const { virtualBatchSize = 32 } = opts;
    if (!Number.isInteger(virtualBatchSize) || virtualBatchSize < 1) {
      throw new Error(
        `GhostBatchNorm needs a positive integer virtualBatchSize, got ${virtualBatchSize}`,
      );
    }
    this.virtualBatchSize = virtualBatchSize;
  }

  /** BatchNorm's, then `virtual_batch_size=32`. */
  override extraRepr(): string {
    return `${super.extraRepr()}, virtual_batch_size=${this.virtualBatchSize}`;
  }

  /** Accepts [N, C], [N, C, L] and [N, C, H, W]. */
  protected checkRank(x: Tensor): void {
    if (x.rank < 2 || x.rank > 4) {
      throw new Error(
        `GhostBatchNorm expects input [N, C], [N, C, L] or [N, C, H, W], got ${fmt(x.shape)}`,
      );
    }
  }

  /**
   * Normalizes `x` per channel: with ghost-batch statistics in training mode (updating the
   * running ones), with running statistics in eval mode.
   */
  override forward(x: Tensor): Tensor {
    // As BatchNorm: ghost-batch statistics in training mode or without running ones.
    const { runningMean, runningVar, options } = this.statistics(x);
    return ghostBatchNorm(x, runningMean, runningVar, this.weight, this.bias, {
      ...options,
      virtualBatchSize: this.virtualBatchSize,
    });
  }
}
