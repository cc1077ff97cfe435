/**
 * Running statistics as filters, side by side: while a network trains, keep several
 * estimates of every BatchNorm layer's population mean and variance from the same batch
 * statistics, each with its own gain (PyTorch's momentum 0.01, 0.1, 0.5, or 1/k, the
 * cumulative average), and swap any of them into the layers to evaluate with it. The
 * lecture's reading of the running estimate as a recursive filter,
 * `x_k = x_{k-1} + g (z_k - x_{k-1})`, with gain `g`.
 *
 * The batch statistics come from forward hooks on the layers' inputs during training steps
 * (training mode with gradients on; evaluations in training mode run without gradients and
 * are not counted): the per-channel mean, and the unbiased variance as PyTorch tracks it.
 * The filters run on the GPU: no readback per step.
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import { BatchNormBase } from "../nn/batch_norm.ts";
import type { HookHandle } from "../nn/module.ts";
import { copyInto, Tensor } from "../tensor/tensor.ts";
import { isGradEnabled, noGrad } from "../tensor/autograd.ts";
import { keep, tidy } from "../tensor/tidy.ts";

/** A filter's gain: a fixed momentum in (0, 1], or `null` for 1/k (the cumulative average). */
export type Gain = number | null;

/** One filter's estimate for one layer. */
interface Estimate {
  mean: Tensor;
  variance: Tensor;
}

/** A name for a gain, as the filter's label: `"momentum 0.1"` or `"cumulative (1/k)"`. */
export function gainLabel(gain: Gain): string {
  return gain === null ? "cumulative (1/k)" : `momentum ${gain}`;
}

/**
 * Several running estimates of every BatchNorm layer's statistics, fed by the batches the
 * network trains on (see the module doc). Create it before training, `use(gain)` to load an
 * estimate into the layers (for an evaluation), `restore()` to put the layers' own back, and
 * `dispose()` at the end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * import { RunningStatsFilters } from "../../train.ts";
 * const bn = new nn.BatchNorm1d(2); // momentum 0.1
 * using filters = new RunningStatsFilters(bn, [0.1, null]);
 * for (let i = 0; i < 3; i++) bn.forward(Tensor.randn([8, 2], { seed: i }));
 * filters.use(0.1); // the same filter as the layer's own: the same numbers, to rounding
 * const own = await filters.saved(0).mean.toArray();
 * const mine = await bn.runningMean!.toArray();
 * assert.ok(mine.every((v, i) => Math.abs(v - own[i]) < 1e-6));
 * filters.restore();
 * ```
 */
export class RunningStatsFilters {
  /** The gains, in the order given. */
  readonly gains: readonly Gain[];
  /** Training batches seen. */
  steps = 0;
  #layers: BatchNormBase[];
  #estimates: Map<Gain, Estimate[]>;
  #hooks: HookHandle[];
  #saved: Estimate[] | null = null;

  /** Filters with `gains` for every BatchNorm layer (with running statistics) of `net`. */
  constructor(net: Module, gains: readonly Gain[]) {
    if (gains.length === 0) throw new Error("RunningStatsFilters needs at least one gain");
    for (const g of gains) {
      if (g !== null && !(g > 0 && g <= 1)) {
        throw new Error(`RunningStatsFilters: a gain is a momentum in (0, 1] or null, got ${g}`);
      }
    }
    this.gains = [...gains];
    this.#layers = net.modules().filter((m): m is BatchNormBase =>
      m instanceof BatchNormBase && m.runningMean !== null
    );
    if (this.#layers.length === 0) {
      throw new Error(
        "RunningStatsFilters: the network has no BatchNorm layer with running statistics",
      );
    }
    // Every filter starts where PyTorch's running statistics start: mean 0, variance 1.
    this.#estimates = new Map(
      gains.map((g) => [g, this.#layers.map((bn) => fresh(bn.numFeatures))]),
    );
    // Training steps only: training mode with gradients on. Training-mode evaluations and
    // PreciseBN's pass run without gradients and must not feed the filters.
    this.#hooks = this.#layers.map((bn, l) =>
      bn.registerForwardHook((m, [x]) => {
        if (m.training && isGradEnabled()) this.#observe(l, x);
      })
    );
  }

  /** Feeds layer `l`'s batch statistics to every filter. */
  #observe(l: number, x: Tensor): void {
    if (l === 0) this.steps++;
    const dims = x.shape.map((_, i) => i).filter((i) => i !== 1);
    const k = this.steps;
    noGrad(() => {
      const [mean, variance] = tidy(() => [x.mean(dims), x.var(dims, { unbiased: true })]);
      for (const [g, est] of this.#estimates) {
        const gain = g ?? 1 / k;
        const e = est[l];
        const next = tidy(() => [
          e.mean.add(mean.sub(e.mean).mul(gain)),
          e.variance.add(variance.sub(e.variance).mul(gain)),
        ]);
        e.mean.dispose();
        e.variance.dispose();
        [e.mean, e.variance] = [keep(next[0]), keep(next[1])];
      }
      mean.dispose();
      variance.dispose();
    });
  }

  /** Layer `l`'s current estimate under `gain`. */
  estimate(gain: Gain, l: number): { mean: Tensor; variance: Tensor } {
    const est = this.#estimates.get(gain);
    if (!est) {
      throw new Error(
        `RunningStatsFilters: no filter with gain ${gain}; have ${this.gains.join(", ")}`,
      );
    }
    return est[l];
  }

  /** The layers' own running statistics as they were before the first `use` (layer `l`). */
  saved(l: number): { mean: Tensor; variance: Tensor } {
    if (!this.#saved) throw new Error("RunningStatsFilters: nothing saved; call use() first");
    return this.#saved[l];
  }

  /**
   * Loads the `gain` filter's estimates into the layers' running statistics (saving the
   * layers' own the first time), for an evaluation in eval mode; `restore()` undoes it.
   */
  use(gain: Gain): void {
    this.#saved ??= this.#layers.map((bn) => ({
      mean: keep(bn.runningMean!.clone()),
      variance: keep(bn.runningVar!.clone()),
    }));
    this.#layers.forEach((bn, l) => {
      const e = this.estimate(gain, l);
      copyInto(bn.runningMean!, e.mean);
      copyInto(bn.runningVar!, e.variance);
    });
  }

  /** Puts the layers' own running statistics back. */
  restore(): void {
    if (!this.#saved) return;
    this.#layers.forEach((bn, l) => {
      copyInto(bn.runningMean!, this.#saved![l].mean);
      copyInto(bn.runningVar!, this.#saved![l].variance);
    });
    for (const s of this.#saved) {
      s.mean.dispose();
      s.variance.dispose();
    }
    this.#saved = null;
  }

  /** Restores the layers, removes the hooks and frees the estimates. */
  dispose(): void {
    this.restore();
    for (const h of this.#hooks) h.remove();
    for (const est of this.#estimates.values()) {
      for (const e of est) {
        e.mean.dispose();
        e.variance.dispose();
      }
    }
  }

  /** Same as {@link RunningStatsFilters.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function fresh(c: number): Estimate {
  return { mean: keep(Tensor.zeros([c])), variance: keep(Tensor.ones([c])) };
}
