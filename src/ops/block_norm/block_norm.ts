/**
 * Normalization over blocks on the GPU (`block_norm.wgsl`): the input [N, C, ...] is
 * viewed as [N, C, S], and each block of `bn` consecutive examples by `bc` consecutive
 * channels (with all S positions) gets its own mean and biased variance; the affine map
 * is per channel. Two layers are this one kernel with different blocks:
 *
 * - {@link groupNorm} (PyTorch's `F.group_norm`): bn = 1, bc = C / numGroups.
 * - {@link ghostBatchNorm} (Hoffer et al. 2017): bn = virtualBatchSize, bc = 1, with
 *   running statistics updated on the GPU.
 *
 * The forward is three launches (row statistics, set statistics, normalize), the backward
 * three (row sums, set coefficients with dweight and dbias, dinp); no host wait.
 *
 * @module
 */
import { allocBuffer, releaseBuffer } from "../../gpu/buffer_pool.ts";
import { adapterProfile } from "../../gpu/device.ts";
import { choose, type Schedule } from "../../gpu/profile.ts";
import { grid, launch, uniforms } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { checkTensor, markWritten, record, Tensor } from "../../tensor/tensor.ts";
import { fmt } from "../../tensor/shape.ts";
import { batchNorm, type BatchNormOptions } from "../batch_norm/batch_norm.ts";
import src from "./block_norm.wgsl" with { type: "text" };

/**
 * How the row passes spread rows over threads: each thread takes `rowsPerThread`
 * consecutive rows of S values, in workgroups of `workgroupSize` threads (1 to 256).
 */
export interface BlockNormTuning {
  rowsPerThread: number;
  workgroupSize: number;
}

/** A schedule of the block-norm kernels: its {@link BlockNormTuning} for rows of S values. */
export interface BlockNormSchedule extends Schedule {
  /** Rows per thread and workgroup size for rows of `s` values. */
  tuning(s: number): BlockNormTuning;
}

/** The plain schedule: one row per thread, as the reference loops, workgroups of 64. */
export const BLOCK_NORM_PLAIN: BlockNormSchedule = {
  name: "plain",
  adapters: [],
  measured: "",
  tuning: () => ({ rowsPerThread: 1, workgroupSize: 64 }),
};

/**
 * llvmpipe's schedule: enough consecutive rows per thread for at least 16 values (16 rows
 * when S = 1, as after a Linear layer), so that short rows do not cost a thread each.
 */
export const BLOCK_NORM_LLVMPIPE: BlockNormSchedule = {
  name: "llvmpipe",
  adapters: ["llvmpipe"],
  measured: "llvmpipe: GroupNorm (8 groups) forward + backward at [256, 120] 0.70x the " +
    "plain schedule's time (bench/ops/schedules_bench.ts, 2-core AMD EPYC, medians of 9 interleaved rounds); the same schedule where rows " +
    "hold 16 values or more",
  tuning: (s) => ({ rowsPerThread: Math.min(16, Math.ceil(16 / s)), workgroupSize: 64 }),
};

/** Every block-norm schedule: the tests run each against the reference. */
export const BLOCK_NORM_SCHEDULES: readonly BlockNormSchedule[] = [
  BLOCK_NORM_PLAIN,
  BLOCK_NORM_LLVMPIPE,
];

/**
 * The schedule for the current adapter: llvmpipe's there, else the plain one.
 */
export function blockNormSchedule(profile = adapterProfile()): BlockNormSchedule {
  return choose(profile, BLOCK_NORM_PLAIN, BLOCK_NORM_LLVMPIPE);
}

function threadLayout(s: number, schedule: BlockNormSchedule): { WG: number; RUN: number } {
  const { rowsPerThread: RUN, workgroupSize: WG } = schedule.tuning(s);
  if (!Number.isInteger(RUN) || RUN < 1 || !Number.isInteger(WG) || WG < 1 || WG > 256) {
    throw new Error(
      `block norm schedule ${schedule.name} needs rowsPerThread >= 1 and workgroupSize in ` +
        `1..256 (integers), got ${RUN} and ${WG}`,
    );
  }
  return { WG, RUN };
}

/** Running statistics that a training-mode call updates (ghost batch norm). */
interface Running {
  mean: Tensor;
  var: Tensor;
  momentum: number | null;
  numBatchesTracked: Tensor | null;
}

function checkChannelTensor(op: string, t: Tensor | null, name: string, inp: Tensor): void {
  const c = inp.shape[1];
  if (t && (t.rank !== 1 || t.shape[0] !== c)) {
    throw new Error(
      `${op}: ${name} must have shape [${c}] (one value per channel of input ` +
        `${fmt(inp.shape)}), got ${fmt(t.shape)}`,
    );
  }
}

/**
 * The shared body: normalizes `inp` over sets of `bn` examples x `bc` channels x S, with
 * per-channel weight and bias, records the backward, and updates `running` when given
 * (bc must then be 1). Arguments are checked by the callers.
 */
function blockNorm(
  op: string,
  inp: Tensor,
  bn: number,
  bc: number,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  running: Running | null,
  schedule: BlockNormSchedule,
): Tensor {
  const [n, c] = inp.shape;
  const s = inp.shape.slice(2).reduce((a, b) => a * b, 1);
  const rows = n * c, ab = Math.ceil(n / bn), cb = c / bc, sets = ab * cb;
  const { WG, RUN } = threadLayout(s, schedule);
  // The kernels take weight and bias together: a lone one gets its neutral partner.
  const ownW = !weight && bias ? Tensor.ones([c]) : null;
  const ownB = weight && !bias ? Tensor.zeros([c]) : null;
  const w = weight ?? ownW, b = bias ?? ownB;
  const base = { WG, RUN, ALIGN: s % 4 === 0 ? 1 : 0, AFFINE: w ? 1 : 0 };
  const params = () =>
    uniforms({ n, c, s, rows, bn, bc, ab, cb, eps, factor: running?.momentum ?? 0 });
  const rowGroups = grid(Math.ceil(Math.ceil(rows / RUN) / WG));
  const setGroups = (extra: number) => grid(Math.ceil((sets + extra) / WG));

  const out = Tensor.empty(inp.shape);
  const mean = Tensor.empty([sets]);
  const rstd = Tensor.empty([sets]);
  const partial = allocBuffer(rows * 8, "block_norm partial");
  launch({
    label: `block_norm.row_stats@${schedule.name}`,
    code: src,
    entryPoint: "row_stats",
    overrides: base,
    bindings: [params(), inp.buffer, partial],
    workgroups: rowGroups,
  });
  launch({
    label: `block_norm.set_stats@${schedule.name}`,
    code: src,
    entryPoint: "set_stats",
    overrides: {
      WG,
      TRACK: running ? 1 : 0,
      CUMULATIVE: running?.momentum === null ? 1 : 0,
    },
    bindings: [
      params(),
      partial,
      mean.buffer,
      rstd.buffer,
      running?.mean.buffer ?? placeholder(0),
      running?.var.buffer ?? placeholder(1),
      running?.numBatchesTracked?.buffer ?? placeholder(2),
    ],
    workgroups: setGroups(running ? c : 0),
  });
  releaseBuffer(partial);
  if (running) {
    markWritten(running.mean);
    markWritten(running.var);
    if (running.numBatchesTracked) {
      launch({
        label: `block_norm.count_batch@${schedule.name}`,
        code: src,
        entryPoint: "count_batch",
        bindings: [params(), running.numBatchesTracked.buffer],
        workgroups: [1],
      });
      markWritten(running.numBatchesTracked);
    }
  }
  launch({
    label: `block_norm.normalize@${schedule.name}`,
    code: src,
    entryPoint: "normalize",
    overrides: base,
    bindings: [
      params(),
      inp.buffer,
      mean.buffer,
      rstd.buffer,
      out.buffer,
      w?.buffer ?? placeholder(0),
      b?.buffer ?? placeholder(1),
    ],
    workgroups: rowGroups,
  });

  const parents = [inp, weight, bias].filter((t): t is Tensor => t !== null);
  // The closure reads the saved statistics and the stand-in weight (a lone bias).
  const saved = [mean, rstd, ...[ownW, ownB].filter((t): t is Tensor => t !== null)];
  record(out, op, parents, (dout) => {
    const paramGrads = !!(weight?.requiresGrad || bias?.requiresGrad);
    const dweight = paramGrads ? Tensor.empty([c]) : null;
    const dbias = paramGrads ? Tensor.empty([c]) : null;
    const sums = allocBuffer(rows * 8, "block_norm partial");
    const coef = allocBuffer(sets * 8, "block_norm coef");
    launch({
      label: `block_norm.row_grads@${schedule.name}`,
      code: src,
      entryPoint: "row_grads",
      overrides: base,
      bindings: [params(), inp.buffer, mean.buffer, rstd.buffer, dout.buffer, sums],
      workgroups: rowGroups,
    });
    launch({
      label: `block_norm.reduce_grads@${schedule.name}`,
      code: src,
      entryPoint: "reduce_grads",
      overrides: { WG, AFFINE: base.AFFINE, PARAM_GRADS: paramGrads ? 1 : 0 },
      bindings: [
        params(),
        sums,
        coef,
        dweight?.buffer ?? placeholder(0),
        dbias?.buffer ?? placeholder(1),
        w?.buffer ?? placeholder(2),
      ],
      workgroups: setGroups(paramGrads ? c : 0),
    });
    releaseBuffer(sums);
    let dinp: Tensor | null = null;
    if (inp.requiresGrad) {
      dinp = Tensor.empty(inp.shape);
      launch({
        label: `block_norm.backward_dinp@${schedule.name}`,
        code: src,
        entryPoint: "backward_dinp",
        overrides: base,
        bindings: [
          params(),
          inp.buffer,
          mean.buffer,
          rstd.buffer,
          dout.buffer,
          w?.buffer ?? placeholder(0),
          coef,
          dinp.buffer,
        ],
        workgroups: rowGroups,
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
    // Not recorded: nothing will read the statistics or the stand-ins again.
    for (const t of saved) t.dispose();
  }
  return out;
}

/** Options of {@link groupNorm}, as PyTorch's `F.group_norm` keywords. */
export interface GroupNormOptions {
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** How the kernels cut the work (tests, benchmarks); default {@link blockNormSchedule}'s. */
  schedule?: BlockNormSchedule;
}

/**
 * Group normalization (Wu & He 2018), as PyTorch's
 * `F.group_norm(input, num_groups, weight, bias, eps)`: the C channels of each example are
 * split into `numGroups` groups of C / numGroups consecutive channels, and each (example,
 * group) is normalized over its channels and all positions with its own mean and biased
 * variance, then scaled and shifted per channel:
 *
 *     y[n, c, ...] = (x - E[x]) / sqrt(Var[x] + eps) * weight[c] + bias[c]
 *
 * with E and Var over the group of c in example n. Like layer norm, the statistics never
 * mix examples: the output does not depend on the batch, and training and inference
 * compute the same thing. `numGroups = 1` is layer norm over (C, H, W) with a per-channel
 * affine map; `numGroups = C` is instance norm. Differentiable in inp, weight and bias.
 *
 * Shape: inp [N, C, *] with C divisible by numGroups, weight and bias [C] or null (ones /
 * zeros) -> out like inp.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * // One example, 4 channels of 2 values, 2 groups: channels {0, 1} and {2, 3}.
 * const x = Tensor.from([[[1, 3], [5, 7], [10, 10], [20, 20]]]);
 * const y = await F.groupNorm(x, 2, null, null, { eps: 0 }).toArray();
 * // Group 0 holds 1, 3, 5, 7 (mean 4, variance 5); group 1 holds 10, 10, 20, 20.
 * const want = [-3, -1, 1, 3].map((v) => v / Math.sqrt(5)).concat([-1, -1, 1, 1]);
 * assert.ok(y.every((v, i) => Math.abs(v - want[i]) < 1e-5));
 * ```
 */
export function groupNorm(
  inp: Tensor,
  numGroups: number,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: GroupNormOptions = {},
): Tensor {
  checkTensor("groupNorm", "input", inp);
  checkTensor("groupNorm", "weight", weight, true);
  checkTensor("groupNorm", "bias", bias, true);
  const { eps = 1e-5, schedule = blockNormSchedule() } = opts;
  if (inp.rank < 2) {
    throw new Error(
      `groupNorm expects input with at least 2 dimensions [N, C, ...], got ${fmt(inp.shape)}`,
    );
  }
  if (!Number.isInteger(numGroups) || numGroups < 1) {
    throw new Error(`groupNorm expects a positive integer numGroups, got ${numGroups}`);
  }
  const c = inp.shape[1];
  if (c % numGroups !== 0) {
    throw new Error(
      "Expected number of channels in input to be divisible by numGroups, but got input of " +
        `shape ${fmt(inp.shape)} and numGroups=${numGroups}`,
    );
  }
  checkChannelTensor("groupNorm", weight, "weight", inp);
  checkChannelTensor("groupNorm", bias, "bias", inp);
  if (!(eps >= 0)) throw new Error(`groupNorm expects eps >= 0, got ${eps}`);
  return blockNorm("groupNorm", inp, 1, c / numGroups, weight, bias, eps, null, schedule);
}

/** Options of {@link ghostBatchNorm}: batch norm's, and the ghost batch size. */
export interface GhostBatchNormOptions extends Omit<BatchNormOptions, "schedule"> {
  /**
   * Examples per ghost batch in training mode: the batch is split into consecutive ghost
   * batches of this many examples, the last holding the remainder when it does not divide
   * N. Default 32.
   */
  virtualBatchSize?: number;
  /**
   * How the training-mode kernels cut the work (tests, benchmarks); default
   * {@link blockNormSchedule}'s. Inference runs batch norm's kernels.
   */
  schedule?: BlockNormSchedule;
}

/**
 * Ghost batch normalization (Hoffer et al. 2017, "Train longer, generalize better"): batch
 * normalization whose training-mode statistics come from "ghost" batches, consecutive
 * slices of `virtualBatchSize` examples, each normalized with its own per-channel mean and
 * biased variance, so that a large batch sees the regularizing noise of small ones:
 *
 *     y = (x - E_g[x]) / sqrt(Var_g[x] + eps) * weight + bias
 *
 * with E_g and Var_g over the ghost batch g of x (its examples and all positions), per
 * channel. When `virtualBatchSize` does not divide N the last ghost batch holds the
 * remainder (N = 70 with 32 gives 32, 32, 6); a last ghost batch of one example whose
 * channels hold one value each (S = 1) is refused, as batch norm refuses a batch of one.
 * `virtualBatchSize >= N` is plain batch norm.
 *
 * Running statistics (when `runningMean` and `runningVar` are given) are updated once per
 * call, with PyTorch's momentum rule `running = (1 - momentum) * running + momentum * stat`
 * (momentum null: the cumulative average, weight 1/k at the k-th batch counted by
 * `numBatchesTracked`, which is incremented on the GPU), where the statistics are:
 *
 *     mean: the mean of the whole batch (the ghost batches' means weighted by size)
 *     var:  the pooled within-ghost-batch variance, sum_g M2_g / sum_g (m_g - 1)
 *
 * M2_g the sum of squared deviations from its own mean and m_g the values per channel of
 * ghost batch g. With equal ghost batches the variance is the average of their unbiased
 * variances: the spread each ghost batch normalized away, which is what eval mode should
 * undo. With one ghost batch both are batch norm's update.
 *
 * With `training: false` the running statistics normalize, exactly as {@link batchNorm}.
 *
 * Shape: inp [N, C, *], runningMean/runningVar/weight/bias [C], output like inp.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * // Four examples of one feature, two ghost batches of two: {1, 3} and {10, 30}.
 * const x = Tensor.from([[1], [3], [10], [30]]);
 * const rm = Tensor.zeros([1]), rv = Tensor.ones([1]);
 * const y = F.ghostBatchNorm(x, rm, rv, null, null, { training: true, virtualBatchSize: 2, eps: 0 });
 * // Each ghost batch normalized on its own: [-1, 1, -1, 1].
 * assert.deepEqual(Array.from(await y.toArray()), [-1, 1, -1, 1]);
 * // Running mean: 0.1 * 11 (the batch mean). Running var: 0.9 + 0.1 * (2 + 200) / 2.
 * const [m, v] = [await rm.item(), await rv.item()];
 * assert.ok(Math.abs(m - 1.1) < 1e-6 && Math.abs(v - 11) < 1e-5);
 * ```
 */
export function ghostBatchNorm(
  inp: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: GhostBatchNormOptions = {},
): Tensor {
  checkTensor("ghostBatchNorm", "input", inp);
  checkTensor("ghostBatchNorm", "runningMean", runningMean, true);
  checkTensor("ghostBatchNorm", "runningVar", runningVar, true);
  checkTensor("ghostBatchNorm", "weight", weight, true);
  checkTensor("ghostBatchNorm", "bias", bias, true);
  const {
    training = false,
    momentum = 0.1,
    eps = 1e-5,
    numBatchesTracked = null,
    virtualBatchSize = 32,
    schedule = blockNormSchedule(),
  } = opts;
  if (inp.rank < 2) {
    throw new Error(
      `ghostBatchNorm expects input with at least 2 dimensions [N, C, ...], got ${fmt(inp.shape)}`,
    );
  }
  if (!Number.isInteger(virtualBatchSize) || virtualBatchSize < 1) {
    throw new Error(
      `ghostBatchNorm expects a positive integer virtualBatchSize, got ${virtualBatchSize}`,
    );
  }
  for (const [name, t] of [["runningMean", runningMean], ["runningVar", runningVar]] as const) {
    checkChannelTensor("ghostBatchNorm", t, name, inp);
  }
  checkChannelTensor("ghostBatchNorm", weight, "weight", inp);
  checkChannelTensor("ghostBatchNorm", bias, "bias", inp);
  if ((runningMean === null) !== (runningVar === null)) {
    throw new Error("ghostBatchNorm: pass both runningMean and runningVar, or neither");
  }
  if (!training) {
    if (!runningMean) {
      throw new Error(
        "ghostBatchNorm in inference mode needs runningMean and runningVar; pass them, or " +
          "set { training: true } to normalize with ghost-batch statistics",
      );
    }
    // Inference is batch norm with the running statistics: the ghost batches play no part.
    return batchNorm(inp, runningMean, runningVar, weight, bias, { training: false, eps });
  }
  if (numBatchesTracked && numBatchesTracked.numel !== 1) {
    throw new Error(
      `ghostBatchNorm: numBatchesTracked must hold one value, got ${fmt(numBatchesTracked.shape)}`,
    );
  }
  if (momentum === null && runningMean && !numBatchesTracked) {
    throw new Error(
      "ghostBatchNorm: momentum null (the cumulative average) needs the numBatchesTracked counter",
    );
  }
  if (!(eps >= 0)) throw new Error(`ghostBatchNorm expects eps >= 0, got ${eps}`);
  const n = inp.shape[0];
  const s = inp.shape.slice(2).reduce((a, b) => a * b, 1);
  if (n * s <= 1) {
    throw new Error(
      `Expected more than 1 value per channel when training, got input size ${fmt(inp.shape)}`,
    );
  }
  const bn = Math.min(virtualBatchSize, n);
  const last = n % bn || bn; // examples in the last ghost batch
  if (last * s <= 1) {
    const which = bn === 1 ? "each ghost batch holds" : "the last ghost batch holds";
    const fix = bn === 1
      ? "use a virtualBatchSize of at least 2"
      : "drop that example, or pick a virtualBatchSize that leaves a remainder other than 1";
    throw new Error(
      `Expected more than 1 value per channel in each ghost batch when training, got input ` +
        `size ${fmt(inp.shape)} with virtualBatchSize ${virtualBatchSize}: ${which} 1 ` +
        `example; ${fix}`,
    );
  }
  const running = runningMean && runningVar
    ? { mean: runningMean, var: runningVar, momentum, numBatchesTracked }
    : null;
  return blockNorm("ghostBatchNorm", inp, bn, 1, weight, bias, eps, running, schedule);
}
