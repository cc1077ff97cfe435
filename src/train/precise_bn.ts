/**
 * Population statistics for batch norm ("PreciseBN", Wu & Johnson 2021): with the weights
 * fixed, run the data through the network and set every BatchNorm layer's running mean
 * and variance to the exact mean and variance of all the inputs it saw, instead of the
 * exponential moving average of batch statistics that training leaves, which lags the
 * weights.
 *
 * Per layer and channel the batches' counts, means and sums of squared deviations are
 * merged on the GPU with Chan's formula (stable for any mean; no E[x^2] - E[x]^2):
 *
 *     n' = n + m,   d = mean_b - mean,   mean' = mean + d m / n',
 *     M2' = M2 + M2_b + d^2 n m / n',   running_var = M2 / (N - 1) (unbiased, as PyTorch)
 *
 * Compare `torch.optim.swa_utils.update_bn`, which averages the batch statistics (its
 * variance misses the spread of the batch means).
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import { BatchNormBase } from "../nn/batch_norm.ts";
import { copyInto, Tensor } from "../tensor/tensor.ts";
import { noGrad } from "../tensor/autograd.ts";
import { keep, tidy } from "../tensor/tidy.ts";
import { flush } from "../gpu/queue.ts";
import { type Loader, preservingBuffers, withMode } from "./evaluate.ts";

/** Options of {@link updateBatchNormStats}. */
export interface BatchNormStatsOptions {
  /** Use at most this many batches of the loader (Wu & Johnson: 10^3 to 10^4 examples suffice). Default all. */
  batches?: number;
  /** The loader's epoch to draw (its shuffle). Default 0. */
  epoch?: number;
}

/** Per-channel count, mean and sum of squared deviations, merged batch by batch. */
class ChannelStats {
  n = 0;
  mean: Tensor;
  m2: Tensor;
  constructor(c: number) {
    this.mean = keep(Tensor.zeros([c]));
    this.m2 = keep(Tensor.zeros([c]));
  }

  /** Merges the statistics of `x` ([N, C, ...], channels on dimension 1). */
  add(x: Tensor): void {
    const dims = x.shape.map((_, i) => i).filter((i) => i !== 1);
    const m = x.numel / x.shape[1];
    const n = this.n + m;
    const [mean, m2] = tidy(() => {
      const meanB = x.mean(dims, true);
      const m2B = x.sub(meanB).square().sum(dims);
      const d = meanB.reshape([-1]).sub(this.mean);
      return [this.mean.add(d.mul(m / n)), this.m2.add(m2B).add(d.square().mul((this.n * m) / n))];
    });
    this.mean.dispose();
    this.m2.dispose();
    [this.mean, this.m2, this.n] = [keep(mean), keep(m2), n];
  }

  dispose(): void {
    this.mean.dispose();
    this.m2.dispose();
  }
}

/**
 * Recomputes every BatchNorm layer's running statistics of `net` as the exact
 * population statistics over the examples of `loader` (see the module doc): the mean, and
 * the unbiased variance. The network runs in training mode without gradients, as during
 * training (each layer sees inputs normalized upstream by batch statistics); weights and
 * `num_batches_tracked` are left as they were. Returns the number of examples used.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * import { updateBatchNormStats } from "../../train.ts";
 * const bn = new nn.BatchNorm1d(2);
 * const x = Tensor.from([[1, 10], [3, 30], [5, 50], [7, 70]]);
 * const loader = { length: 2, batches: () => [{ x: x.reshape(4, 2), y: Tensor.zeros([4]) }] };
 * await updateBatchNormStats(bn, loader);
 * assert.deepEqual(Array.from(await bn.runningMean!.toArray()), [4, 40]);
 * // unbiased: sum of squared deviations 20 (and 2000) over 3
 * const v = await bn.runningVar!.toArray();
 * assert.ok(Math.abs(v[0] - 20 / 3) < 1e-5 && Math.abs(v[1] - 2000 / 3) < 1e-3);
 * ```
 */
export async function updateBatchNormStats(
  net: Module,
  loader: Loader,
  { batches = Infinity, epoch = 0 }: BatchNormStatsOptions = {},
): Promise<number> {
  if (!(batches >= 1)) {
    throw new Error(`updateBatchNormStats: batches must be at least 1, got ${batches}`);
  }
  const layers = net.modules().filter((m): m is BatchNormBase =>
    m instanceof BatchNormBase && m.runningMean !== null
  );
  if (layers.length === 0) {
    throw new Error(
      "updateBatchNormStats: the network has no BatchNorm layer with running statistics",
    );
  }
  const stats = new Map(layers.map((bn) => [bn, new ChannelStats(bn.numFeatures)]));
  const hooks = layers.map((bn) => bn.registerForwardHook((_m, [x]) => void stats.get(bn)!.add(x)));
  let examples = 0;
  try {
    // Training mode (batch statistics), with every buffer restored afterwards.
    await preservingBuffers(net, () =>
      withMode(net, true, async () => {
        let k = 0;
        for await (const { x } of loader.batches(epoch)) {
          tidy(() => noGrad(() => net.forward(x)));
          flush();
          examples += x.shape[0];
          if (++k >= batches) break;
        }
      }));
    if (examples === 0) throw new Error("updateBatchNormStats: the loader yielded no batches");
    for (const [bn, s] of stats) {
      if (s.n < 2) {
        throw new Error(
          `updateBatchNormStats: ${s.n} value per channel is not enough for a variance`,
        );
      }
      tidy(() => {
        copyInto(bn.runningMean!, s.mean);
        copyInto(bn.runningVar!, s.m2.div(s.n - 1));
      });
    }
  } finally {
    for (const h of hooks) h.remove();
    for (const s of stats.values()) s.dispose();
  }
  return examples;
}
