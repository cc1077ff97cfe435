/**
 * Batch normalization as fused WGSL kernels (`batch_norm.wgsl`): the functional form
 * {@link batchNorm}, with PyTorch's `F.batch_norm` argument order, that `nn.BatchNorm1d`
 * and `nn.BatchNorm2d` hand off to. Training mode computes per-channel batch statistics
 * on the GPU, saves `mean` and `rstd` for the backward, and updates the running
 * statistics in the kernel (no host readback); inference mode is one elementwise kernel.
 * The backward is fused too (three launches give `dinp`, `dweight` and `dbias`).
 *
 * @module
 */
import { allocBuffer, releaseBuffer } from "../../gpu/buffer_pool.ts";
import { grid, launch, Params } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { markWritten, record, Tensor } from "../../tensor/tensor.ts";
import { fmt } from "../../tensor/shape.ts";
import src from "./batch_norm.wgsl" with { type: "text" };

/** Threads per workgroup of every batch-norm kernel (a WGSL `override`). */
const WG = 256;
/** Workgroups the partial reductions aim for: enough to fill a large GPU, even at C = 6. */
const TARGET_WORKGROUPS = 1024;
/** ... but each thread gets at least this many vec4 work items before a channel is split. */
const MIN_ITEMS_PER_THREAD = 4;
/**
 * Workgroup size of the partial reductions over small channels (at most SMALL_WG *
 * MIN_ITEMS_PER_THREAD items): fewer threads, fewer barrier steps in the tree.
 */
const SMALL_WG = 64;

/** Options of {@link batchNorm}, as PyTorch's `F.batch_norm` keywords. */
export interface BatchNormOptions {
  /** Normalize with batch statistics (and update the running ones). Default false. */
  training?: boolean;
  /**
   * Weight of the batch statistic in the running update:
   * `running = (1 - momentum) * running + momentum * batch`; null gives the cumulative
   * average (weight 1/k at the k-th batch counted by `numBatchesTracked`). Default 0.1.
   */
  momentum?: number | null;
  /**
   * A one-element counter of training batches (PyTorch's `num_batches_tracked`),
   * incremented on the GPU by each training-mode call that updates running statistics;
   * needed with `momentum: null`.
   */
  numBatchesTracked?: Tensor | null;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
}

/** How the kernels see an input of shape [N, C, ...]: sizes and the channel split. */
interface Layout {
  n: number;
  c: number;
  s: number;
  total: number;
  /** vec4 work items per row of S values. */
  k: number;
  /** Workgroups per channel in the partial reductions. */
  groups: number;
  /** Work items per workgroup. */
  items: number;
  /** Values per channel, N*S. */
  m: number;
  /** Workgroup size of the partial reductions. */
  wg: number;
}

function layoutOf(shape: readonly number[]): Layout {
  const [n, c] = shape;
  const s = shape.slice(2).reduce((a, b) => a * b, 1);
  // A row of S values starting anywhere touches at most floor((S + 2) / 4) + 1 vec4s.
  const k = s % 4 === 0 ? s / 4 : Math.floor((s + 2) / 4) + 1;
  const work = n * k;
  const split = Math.min(
    Math.ceil(TARGET_WORKGROUPS / c),
    Math.ceil(work / (WG * MIN_ITEMS_PER_THREAD)),
  );
  const items = Math.max(1, Math.ceil(work / Math.max(1, split)));
  const groups = Math.max(1, Math.ceil(work / items));
  const wg = items <= SMALL_WG * MIN_ITEMS_PER_THREAD ? SMALL_WG : WG;
  return { n, c, s, total: n * c * s, k, groups, items, m: n * s, wg };
}

function params(l: Layout, eps: number, factor = 0): Params {
  return new Params()
    .u32(l.n).u32(l.c).u32(l.s).u32(l.total)
    .u32(l.k).u32(l.groups).u32(l.items).f32(l.m)
    .f32(eps).f32(factor).u32(0).u32(0);
}

function channelGrid(c: number): [number, number] {
  return grid(Math.ceil(c / WG));
}

function elementGrid(total: number): [number, number] {
  return grid(Math.ceil(Math.ceil(total / 4) / WG));
}

function checkChannelTensor(t: Tensor | null, name: string, c: number, inp: Tensor): void {
  if (t && (t.rank !== 1 || t.shape[0] !== c)) {
    throw new Error(
      `batchNorm: ${name} must have shape [${c}] (one value per channel of input ` +
        `${fmt(inp.shape)}), got ${fmt(t.shape)}`,
    );
  }
}

/**
 * Batch normalization over dimension 1 of `inp` ([N, C, ...]), as PyTorch's
 * `F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)`:
 *
 *     y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias
 *
 * per channel c, with E and Var over every dimension but 1 (N, H, W for [N, C, H, W];
 * N and L for [N, C, L]; N for [N, C]); Var is the biased variance. With
 * `training: true` the batch statistics are used and, when `runningMean` and `runningVar`
 * are given, updated in place on the GPU with the unbiased variance (times M/(M-1), M
 * values per channel): `running = (1 - momentum) * running + momentum * batch`. With
 * `training: false` the running statistics normalize. `weight` and `bias` may be null
 * (scale 1, shift 0). Gradients flow to `inp`, `weight` and `bias`, never to the running
 * statistics.
 *
 * Shape: inp [N, C, *], runningMean/runningVar/weight/bias [C], output like inp.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../../mod.ts";
 * import { batchNorm } from "./batch_norm.ts";
 * import assert from "node:assert/strict";
 * const x = Tensor.from([[1, 10], [3, 30]]); // N = 2 examples, C = 2 features
 * const runningMean = Tensor.zeros([2]);
 * const runningVar = Tensor.ones([2]);
 * const y = batchNorm(x, runningMean, runningVar, null, null, { training: true });
 * const out = await y.toArray(); // each column normalized: [-1, -1, 1, 1]
 * assert.ok(out.every((v, i) => Math.abs(v - [-1, -1, 1, 1][i]) < 1e-4));
 * // 0.9 * 0 + 0.1 * [2, 20]
 * assert.deepEqual(Array.from(await runningMean.toArray()), [0.2, 2].map(Math.fround));
 * ```
 */
export function batchNorm(
  inp: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: BatchNormOptions = {},
): Tensor {
  const { training = false, momentum = 0.1, eps = 1e-5, numBatchesTracked = null } = opts;
  if (inp.rank < 2) {
    throw new Error(
      `batchNorm expects input with at least 2 dimensions [N, C, ...], got ${fmt(inp.shape)}`,
    );
  }
  const l = layoutOf(inp.shape);
  checkChannelTensor(runningMean, "runningMean", l.c, inp);
  checkChannelTensor(runningVar, "runningVar", l.c, inp);
  checkChannelTensor(weight, "weight", l.c, inp);
  checkChannelTensor(bias, "bias", l.c, inp);
  if ((runningMean === null) !== (runningVar === null)) {
    throw new Error("batchNorm: pass both runningMean and runningVar, or neither");
  }
  if (!training && !runningMean) {
    throw new Error(
      "batchNorm in inference mode needs runningMean and runningVar; pass them, or " +
        "set { training: true } to normalize with batch statistics",
    );
  }
  if (numBatchesTracked && numBatchesTracked.numel !== 1) {
    throw new Error(
      `batchNorm: numBatchesTracked must hold one value, got ${fmt(numBatchesTracked.shape)}`,
    );
  }
  if (momentum === null && training && runningMean && !numBatchesTracked) {
    throw new Error(
      "batchNorm: momentum null (the cumulative average) needs the numBatchesTracked counter",
    );
  }
  if (training && l.m <= 1) {
    throw new Error(
      `Expected more than 1 value per channel when training, got input size ${fmt(inp.shape)}`,
    );
  }
  // The kernels take weight and bias together: a lone one gets its neutral partner.
  const ownW = !weight && bias ? Tensor.ones([l.c]) : null;
  const ownB = weight && !bias ? Tensor.zeros([l.c]) : null;
  const w = weight ?? ownW, b = bias ?? ownB;
  const affine = w !== null;
  const out = Tensor.empty(inp.shape);
  let mean: Tensor, rstd: Tensor; // the cache: batch statistics, or the running ones in eval
  if (training) {
    mean = Tensor.empty([l.c]);
    rstd = Tensor.empty([l.c]);
    const partial = allocBuffer(l.c * l.groups * 16, "batch_norm partial");
    const p = params(l, eps, momentum ?? 0);
    launch({
      label: "batch_norm.stats_partial",
      code: src,
      entryPoint: "stats_partial",
      overrides: { WG: l.wg },
      bindings: [p, inp.buffer, partial],
      workgroups: grid(l.c * l.groups),
    });
    launch({
      label: "batch_norm.stats_finalize",
      code: src,
      entryPoint: "stats_finalize",
      overrides: { WG, TRACK: runningMean ? 1 : 0, CUMULATIVE: momentum === null ? 1 : 0 },
      bindings: [
        p,
        partial,
        mean.buffer,
        rstd.buffer,
        runningMean?.buffer ?? placeholder(0),
        runningVar?.buffer ?? placeholder(1),
        numBatchesTracked?.buffer ?? placeholder(2),
      ],
      workgroups: channelGrid(l.c),
    });
    releaseBuffer(partial);
    if (runningMean && runningVar) {
      markWritten(runningMean);
      markWritten(runningVar);
    }
    if (runningMean && numBatchesTracked) {
      launch({
        label: "batch_norm.count_batch",
        code: src,
        entryPoint: "count_batch",
        bindings: [p, numBatchesTracked.buffer],
        workgroups: [1],
      });
      markWritten(numBatchesTracked);
    }
  } else {
    // EVAL = 1: the kernels read running_var where the cache holds rstd.
    mean = runningMean!;
    rstd = runningVar!;
  }
  const eval_ = training ? 0 : 1;
  launch({
    label: "batch_norm.normalize",
    code: src,
    entryPoint: "normalize",
    overrides: { WG, EVAL: eval_, AFFINE: affine ? 1 : 0 },
    bindings: [
      params(l, eps),
      inp.buffer,
      mean.buffer,
      rstd.buffer,
      w?.buffer ?? placeholder(0),
      b?.buffer ?? placeholder(0),
      out.buffer,
    ],
    workgroups: elementGrid(l.total),
  });
  const parents = [inp, weight, bias].filter((t): t is Tensor => t !== null);
  // The closure reads the cache (batch statistics, or the running ones in eval mode, held so
  // that a later running-statistics update is caught) and the stand-ins for weight and bias.
  const saved = [mean, rstd, ...[ownW, ownB].filter((t): t is Tensor => t !== null)];
  record(out, "batchNorm", parents, (dout) => {
    const dweight = affine ? Tensor.empty([l.c]) : null;
    const dbias = affine ? Tensor.empty([l.c]) : null;
    const partial = allocBuffer(l.c * l.groups * 16, "batch_norm partial");
    const coef = allocBuffer(l.c * 16, "batch_norm coef");
    const p = params(l, eps);
    launch({
      label: "batch_norm.backward_partial",
      code: src,
      entryPoint: "backward_partial",
      overrides: { WG: l.wg, EVAL: eval_ },
      bindings: [p, inp.buffer, dout.buffer, mean.buffer, rstd.buffer, partial],
      workgroups: grid(l.c * l.groups),
    });
    launch({
      label: "batch_norm.backward_finalize",
      code: src,
      entryPoint: "backward_finalize",
      overrides: { WG, EVAL: eval_, AFFINE: affine ? 1 : 0 },
      bindings: [
        p,
        partial,
        rstd.buffer,
        w?.buffer ?? placeholder(0),
        dweight?.buffer ?? placeholder(1),
        dbias?.buffer ?? placeholder(2),
        coef,
      ],
      workgroups: channelGrid(l.c),
    });
    releaseBuffer(partial);
    let dinp: Tensor | null = null;
    if (inp.requiresGrad) {
      dinp = Tensor.empty(inp.shape);
      launch({
        label: "batch_norm.backward_dinp",
        code: src,
        entryPoint: "backward_dinp",
        overrides: { WG, EVAL: eval_ },
        bindings: [p, inp.buffer, dout.buffer, mean.buffer, rstd.buffer, coef, dinp.buffer],
        workgroups: elementGrid(l.total),
      });
    }
    releaseBuffer(coef);
    const grads: (Tensor | null)[] = [dinp];
    if (weight) grads.push(dweight);
    else dweight?.dispose();
    if (bias) grads.push(dbias);
    else dbias?.dispose();
    return grads;
  }, saved);
  if (!out.requiresGrad) {
    // Not recorded: nothing will read the cache or the stand-ins again.
    if (training) {
      mean.dispose();
      rstd.dispose();
    }
    ownW?.dispose();
    ownB?.dispose();
  }
  return out;
}
