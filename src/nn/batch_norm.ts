/**
 * `BatchNorm1d` and `BatchNorm2d`, with PyTorch's semantics: learnable `weight` and
 * `bias`, running statistics as buffers, batch statistics in training mode and running
 * ones in eval mode. Both hand off to the functional {@link batchNorm} (fused WGSL).
 *
 * @module
 */
import { checkNormOptions } from "./norm_options.ts";
import { Module } from "./module.ts";
import { py, pyFloat } from "./repr.ts";
import { fusibleActivation } from "./fusion.ts";
import { checkTensor, copyInto, Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";
import {
  batchNorm,
  batchNormMaxPool2d,
  type BatchNormOptions,
} from "../ops/batch_norm/batch_norm.ts";
import type { MaxPool2d } from "./pooling.ts";

/** Options of {@link BatchNorm1d} and {@link BatchNorm2d}, as PyTorch's keywords. */
export interface BatchNormLayerOptions {
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /**
   * Weight of the new batch statistic in the running update,
   * `running = (1 - momentum) * running + momentum * batch`; `null` gives the cumulative
   * average (momentum 1/k at the k-th training batch). Default 0.1.
   */
  momentum?: number | null;
  /** Learnable per-channel `weight` (ones) and `bias` (zeros). Default true. */
  affine?: boolean;
  /**
   * Keep running statistics for eval mode. When false, batch statistics are used in
   * eval mode too and `runningMean`/`runningVar` are null. Default true.
   */
  trackRunningStats?: boolean;
}

/** The shared body of the BatchNorm layers (PyTorch's `_BatchNorm`); subclasses check the rank. */
export abstract class BatchNormBase extends Module {
  /** C, the number of channels (features) normalized separately. */
  readonly numFeatures: number;
  /** Added to the variance before the square root. */
  eps: number;
  /** Running-update weight of the batch statistic, or null for the cumulative average. */
  momentum: number | null;
  /** Whether `weight` and `bias` exist. */
  readonly affine: boolean;
  /** Whether running statistics are kept. */
  readonly trackRunningStats: boolean;
  /** gamma, shape [C], ones (null when `affine` is false). */
  readonly weight: Tensor | null;
  /** beta, shape [C], zeros (null when `affine` is false). */
  readonly bias: Tensor | null;
  /** Running mean, shape [C], zeros (null when `trackRunningStats` is false). */
  readonly runningMean: Tensor | null;
  /** Running (unbiased) variance, shape [C], ones (null when `trackRunningStats` is false). */
  readonly runningVar: Tensor | null;
  /**
   * Training batches seen, a one-element tensor counted on the GPU (state-dict name
   * `num_batches_tracked`, saved as an integer); null when `trackRunningStats` is false.
   */
  readonly numBatchesTracked: Tensor | null;

  /** A layer for `numFeatures` channels (C of [N, C] or [N, C, ...]); see the options for the defaults. */
  constructor(numFeatures: number, opts: BatchNormLayerOptions = {}) {
    super();
    const name = new.target.name;
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new Error(`${name} needs a positive integer number of features, got ${numFeatures}`);
    }
    const { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true } = opts;
    checkNormOptions(name, eps, momentum);
    this.numFeatures = numFeatures;
    this.eps = eps;
    this.momentum = momentum;
    this.affine = affine;
    this.trackRunningStats = trackRunningStats;
    this.weight = this.registerParameter("weight", affine ? Tensor.ones([numFeatures]) : null);
    this.bias = this.registerParameter("bias", affine ? Tensor.zeros([numFeatures]) : null);
    this.runningMean = this.registerBuffer(
      "running_mean",
      trackRunningStats ? Tensor.zeros([numFeatures]) : null,
    );
    this.runningVar = this.registerBuffer(
      "running_var",
      trackRunningStats ? Tensor.ones([numFeatures]) : null,
    );
    this.numBatchesTracked = this.registerBuffer(
      "num_batches_tracked",
      trackRunningStats ? Tensor.zeros([]) : null,
      { integer: true },
    );
  }

  /** PyTorch's: `6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True`. */
  override extraRepr(): string {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${
      this.momentum === null ? "None" : pyFloat(this.momentum)
    }, affine=${py(this.affine)}, track_running_stats=${py(this.trackRunningStats)}`;
  }

  /** Throws unless `x` has a rank this layer accepts. */
  protected abstract checkRank(x: Tensor): void;

  /**
   * Normalizes `x` per channel (dimension 1): with batch statistics in training mode
   * (updating the running ones), with running statistics in eval mode.
   */
  forward(x: Tensor): Tensor {
    checkTensor(`${this.constructor.name}.forward`, "input", x);
    const { runningMean, runningVar, options } = this.statistics(x);
    return batchNorm(x, runningMean, runningVar, this.weight, this.bias, options);
  }

  /**
   * BatchNorm followed by a plain Sigmoid or ReLU as one kernel (see
   * {@link Module.fusedWith}); null for any other pair, or when either module's `forward`
   * is not its class's own (a forward hook, a subclass).
   */
  override fusedWith(next: Module): ((x: Tensor) => Tensor) | null {
    if (this.forward !== BatchNormBase.prototype.forward) return null;
    const activation = fusibleActivation(next);
    if (!activation) return null;
    return (x) => {
      const { runningMean, runningVar, options } = this.statistics(x);
      const opts = { ...options, activation } as const;
      return batchNorm(x, runningMean, runningVar, this.weight, this.bias, opts);
    };
  }

  /**
   * BatchNorm, a plain Sigmoid or ReLU and a plain MaxPool2d of 2x2 windows, stride 2, no
   * padding, as one pass each way (`batchNormMaxPool2d`; see {@link Module.fusedThrough});
   * null for any other three, or when a module's `forward` is not its class's own.
   */
  override fusedThrough(next: Module, after: Module): ((x: Tensor) => Tensor) | null {
    if (this.forward !== BatchNormBase.prototype.forward) return null;
    const activation = fusibleActivation(next);
    if (!activation || !next.fusedWith(after)) return null; // after: a plain MaxPool2d
    const { kernelSize, stride, padding } = after as MaxPool2d;
    if ([...kernelSize, ...stride].some((v) => v !== 2) || padding.some((v) => v !== 0)) {
      return null;
    }
    return (x) => {
      const { runningMean, runningVar, options } = this.statistics(x);
      const opts = { ...options, activation } as const;
      return batchNormMaxPool2d(x, runningMean, runningVar, this.weight, this.bias, opts);
    };
  }

  /**
   * Checks `x` against this layer and says which statistics normalize it, as PyTorch's
   * `_BatchNorm.forward` does: the batch's in training mode or when there are no running
   * ones; in training the kernels count the batch and update the running statistics (weight
   * `momentum`, or 1/k for the cumulative average) on the GPU.
   */
  protected statistics(x: Tensor): {
    runningMean: Tensor | null;
    runningVar: Tensor | null;
    options: Omit<BatchNormOptions, "schedule">;
  } {
    this.checkRank(x);
    if (x.shape[1] !== this.numFeatures) {
      throw new Error(
        `${this.constructor.name}(${this.numFeatures}) expects ${this.numFeatures} channels, ` +
          `got input ${fmt(x.shape)}`,
      );
    }
    const track = !this.training || this.trackRunningStats;
    return {
      runningMean: track ? this.runningMean : null,
      runningVar: track ? this.runningVar : null,
      options: {
        training: this.training || !this.trackRunningStats,
        momentum: this.momentum,
        eps: this.eps,
        numBatchesTracked: this.training ? this.numBatchesTracked : null,
      },
    };
  }

  /** Resets the running statistics to zeros and ones and `numBatchesTracked` to 0. */
  resetRunningStats(): void {
    if (!this.runningMean || !this.runningVar || !this.numBatchesTracked) return;
    // Copies on the GPU, in order with the work already encoded.
    using zeros = Tensor.zeros([this.numFeatures]);
    using ones = Tensor.ones([this.numFeatures]);
    using zero = Tensor.zeros([]);
    copyInto(this.runningMean, zeros);
    copyInto(this.runningVar, ones);
    copyInto(this.numBatchesTracked, zero);
  }
}

/**
 * Batch normalization over a 2-D input [N, C] (statistics per feature over N) or a 3-D
 * input [N, C, L] (per channel over N and L), as `torch.nn.BatchNorm1d`:
 *
 *     y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias
 *
 * In training mode E and Var are the batch's (Var biased) and the running statistics are
 * updated, `running = (1 - momentum) * running + momentum * batch` with the unbiased batch
 * variance; in eval mode the running statistics normalize. Defaults: eps 1e-5, momentum
 * 0.1 (null: cumulative average), affine true (weight ones, bias zeros),
 * trackRunningStats true (running mean zeros, running var ones).
 *
 * Shape: input [N, C] or [N, C, L], output the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const bn = new nn.BatchNorm1d(2);
 * const y = bn.forward(Tensor.from([[1, 10], [3, 30]]));
 * const out = await y.toArray(); // each column normalized: [-1, -1, 1, 1]
 * assert.ok(out.every((v, i) => Math.abs(v - [-1, -1, 1, 1][i]) < 1e-4));
 * assert.deepEqual(Array.from(await bn.runningMean!.toArray()), [0.2, 2].map(Math.fround));
 * assert.equal(await bn.numBatchesTracked!.item(), 1);
 * ```
 */
export class BatchNorm1d extends BatchNormBase {
  /** Accepts [N, C] and [N, C, L]. */
  protected checkRank(x: Tensor): void {
    if (x.rank !== 2 && x.rank !== 3) {
      throw new Error(
        `BatchNorm1d expects 2-D input [N, C] or 3-D input [N, C, L], got ${fmt(x.shape)}`,
      );
    }
  }
}

/**
 * Batch normalization over a 4-D input [N, C, H, W], statistics per channel over N, H
 * and W, as `torch.nn.BatchNorm2d`:
 *
 *     y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias
 *
 * In training mode E and Var are the batch's (Var biased) and the running statistics are
 * updated, `running = (1 - momentum) * running + momentum * batch` with the unbiased batch
 * variance (times n/(n-1), n = N*H*W); in eval mode the running statistics normalize.
 * Defaults: eps 1e-5, momentum 0.1 (null: cumulative average), affine true (weight ones,
 * bias zeros), trackRunningStats true (running mean zeros, running var ones).
 *
 * Shape: input [N, C, H, W], output the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const bn = new nn.BatchNorm2d(3);
 * const x = Tensor.randn([8, 3, 5, 5], { seed: 0 }).mul(4).add(2);
 * const m = await bn.forward(x).mean([0, 2, 3]).toArray(); // per channel
 * assert.ok(m.every((v) => Math.abs(v) < 1e-5));
 * bn.eval(); // now the running statistics normalize
 * assert.equal(bn.forward(x).shape.join(), "8,3,5,5");
 * ```
 */
export class BatchNorm2d extends BatchNormBase {
  /** Accepts [N, C, H, W]. */
  protected checkRank(x: Tensor): void {
    if (x.rank !== 4) {
      throw new Error(`BatchNorm2d expects 4-D input [N, C, H, W], got ${fmt(x.shape)}`);
    }
  }
}
