/**
 * Batch normalization as fused WGSL kernels (`batch_norm.wgsl`): the functional form
 * {@link batchNorm}, with PyTorch's `F.batch_norm` argument order, that `nn.BatchNorm1d`
 * and `nn.BatchNorm2d` hand off to, optionally with the following ReLU or sigmoid fused
 * in. Training mode computes per-channel batch statistics on the GPU, saves them for the
 * backward, and updates the running statistics in the kernel (no host readback). The
 * backward is fused too: three launches give `dinp`, `dweight` and `dbias`, and where a
 * schedule's units hold whole channels (one block: the plain schedule, and llvmpipe's at
 * small batches) each direction is a single launch.
 *
 * @module
 */
import { allocBuffer, releaseBuffer } from "../../gpu/buffer_pool.ts";
import { adapterProfile } from "../../gpu/device.ts";
import { choose, MAX_LOOP, type Schedule } from "../../gpu/profile.ts";
import { grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { activationCode, type FusedActivation } from "../activation/activation.ts";
import { checkTensor, markWritten, record, Tensor } from "../../tensor/tensor.ts";
import { fmt } from "../../tensor/shape.ts";
import {
  maxPool2d,
  normalizedMaxPool2d,
  type PoolSchedule,
  poolSchedule,
  takesNormalizedPool,
} from "../pool/pool.ts";
import src from "./batch_norm.wgsl" with { type: "text" };

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
  /**
   * An activation applied to the normalized output in the same kernel (`"relu"` or
   * `"sigmoid"`): `act(batchNorm(x))` without the intermediate tensor. Default none.
   */
  activation?: FusedActivation;
  /**
   * How the kernels cut the work (for tests and benchmarks); default the adapter profile's
   * choice, {@link batchNormSchedule}.
   */
  schedule?: BatchNormSchedule;
}

/**
 * How the kernels cut the work (see the header of `batch_norm.wgsl`): explicit values, each
 * left undefined taken from the schedule.
 */
export interface BatchNormTuning {
  /** Threads per workgroup. */
  workgroupSize?: number;
  /** Threads sharing a unit (a power of two dividing the workgroup size). */
  threadsPerUnit?: number;
  /** Examples per unit (block). */
  examplesPerBlock?: number;
}

/**
 * A schedule of the batch-norm kernels: the {@link BatchNormTuning} it picks for N examples
 * of `groups` channel groups (C, or C / 4 for columns), `seg` items each.
 */
export interface BatchNormSchedule extends Schedule {
  /** The unit and workgroup sizes for this input. */
  tuning(n: number, groups: number, seg: number): Required<BatchNormTuning>;
}

const pow2 = (v: number) => 2 ** Math.ceil(Math.log2(Math.max(1, v)));

/**
 * Items (vec4s, or floats) per channel up to which llvmpipe's schedule makes the whole batch
 * one unit. BatchNorm + sigmoid forward + backward, one fused thread per channel against the
 * cut units (AMD EPYC, 2 cores, a CI run beside it; medians of 5 interleaved rounds): 0.44x the
 * time at
 * [2, 6, 24, 24] (288 items), 0.61x at [8, 6, 24, 24], 0.96x at [32, 6, 24, 24] (4,608), 0.85x at
 * [256, 16, 8, 8] (4,096), 0.58x at [256, 84] (columns, 256), but 1.38x at [256, 6, 24, 24]
 * (36,864).
 */
const ONE_BLOCK_ITEMS = 8192;

/**
 * Items per channel from which llvmpipe's schedule gives a one-block unit 8 threads (one
 * vector), in a workgroup of its own: with one thread per unit and 64 per workgroup, LeNet's
 * 6 or 16 channels ran in a single workgroup, on one core, 6 or 16 lanes of 8-wide vectors.
 * Forward / backward, GPU timestamps, least of 20 interleaved rounds (AMD EPYC, 2 cores,
 * 2026-12-07), 8 threads against 1: 332 / 380 against 515 / 651 us at [32, 6, 24, 24] (4,608
 * items), 868 / 1179 against 1340 / 1596 at [256, 16, 8, 8] (4,096), 162 / 153 against 149 /
 * 217 at [8, 6, 24, 24] (1,152); even at [32, 16, 8, 8] (512: 219 / 187 against 189 / 234),
 * slower below (2 x 6 x 24 x 24: 70 / 108 against 84 / 82) and at [32, 120] (columns: 94 / 49
 * against 58 / 65). 4 and 16 threads were slower than 8 at 4,608 items.
 */
const SHARED_UNIT_ITEMS = 1024;

/**
 * The plain schedule, as the float64 reference loops: a unit is a whole channel (or channel
 * quad, for columns), all N examples, owned by one workgroup whose threads stride over its
 * values (up to 64 threads, one per item for small channels) and merge their statistics in a
 * tree. Correct on any adapter; the default where nobody has measured.
 */
export const BATCH_NORM_PLAIN: BatchNormSchedule = {
  name: "plain",
  adapters: [],
  measured: "",
  tuning: (n, _groups, seg) => {
    const tpr = Math.min(64, pow2(n * seg));
    return { examplesPerBlock: n, threadsPerUnit: tpr, workgroupSize: tpr };
  },
};

/**
 * llvmpipe's schedule: one thread per unit (no barriers: a workgroup barrier costs more than
 * the strided loads it saves on a CPU), 64 threads per workgroup. A channel (or channel quad)
 * of at most {@link ONE_BLOCK_ITEMS} items is one unit, all N examples, so that each direction
 * is one fused launch; a larger one is cut into units of at least 64 items, so that the
 * per-unit loads of the channel's coefficients are amortised, but at least 128 units, to keep
 * every core busy.
 */
export const BATCH_NORM_LLVMPIPE: BatchNormSchedule = {
  name: "llvmpipe",
  adapters: ["llvmpipe"],
  measured: "llvmpipe: BatchNorm + sigmoid forward + backward 0.32-0.38x the plain " +
    "schedule's time at [256, 6, 24, 24], 0.77-0.98x at [256, 16, 8, 8], 0.84-0.86x at " +
    "[256, 120], 0.76-0.77x at [256, 84] (bench/ops/schedules_bench.ts, 2-core AMD EPYC, " +
    "medians of 7 interleaved rounds, two runs on 2026-12-07); [256, 6, 24, 24] forward at " +
    "0.82 of a copy's bandwidth (bench/ops/batch_norm_bench.ts, 2-core Intel Xeon, earlier)",
  tuning: (n, groups, seg) => {
    if (n * seg > ONE_BLOCK_ITEMS) {
      const nb = Math.max(1, Math.min(Math.ceil(64 / seg), Math.floor((n * groups) / 128)));
      return { examplesPerBlock: nb, threadsPerUnit: 1, workgroupSize: 64 };
    }
    // a large unit: a workgroup of one vector of threads each, so that the units spread over
    // the cores and fill the vector
    const t = n * seg >= SHARED_UNIT_ITEMS ? 8 : 1;
    return { examplesPerBlock: n, threadsPerUnit: t, workgroupSize: t === 1 ? 64 : t };
  },
};

/** Every batch-norm schedule: the tests run each against the reference. */
export const BATCH_NORM_SCHEDULES: readonly BatchNormSchedule[] = [
  BATCH_NORM_PLAIN,
  BATCH_NORM_LLVMPIPE,
];

/**
 * The schedule for the current adapter: llvmpipe's there, else the plain one.
 */
export function batchNormSchedule(profile = adapterProfile()): BatchNormSchedule {
  return choose(profile, BATCH_NORM_PLAIN, BATCH_NORM_LLVMPIPE);
}

/** How the kernels see an input of shape [N, C, ...]. */
export interface BatchNormLayout {
  /** The schedule's name (launch labels carry it). */
  schedule: string;
  n: number;
  c: number;
  /** Values per (example, channel): the product of the dims after C. */
  s: number;
  /** Values per channel, N*S. */
  m: number;
  /** 4 channels per unit, one vec4 per example (S == 1, C % 4 == 0). */
  columns: boolean;
  /** Items are vec4s (else single floats). */
  vec: boolean;
  /** Items per example in a unit. */
  seg: number;
  /** Channel groups: C, or C / 4 for columns. */
  groups: number;
  /** Examples per block. */
  nb: number;
  blocks: number;
  units: number;
  /** Items from one example to the next. */
  rowStride: number;
  wg: number;
  tpr: number;
}

/** Threads per workgroup of the per-channel passes. */
const CHANNEL_WG = 64;

/**
 * The kernels' view of `shape` under `schedule` (default the adapter's), with any value of
 * `tuning` in place of the schedule's. Each thread's loop over its items stays below
 * {@link MAX_LOOP}: more threads per unit where a unit would need more.
 */
export function batchNormLayout(
  shape: readonly number[],
  tuning: BatchNormTuning = {},
  schedule: BatchNormSchedule = batchNormSchedule(),
): BatchNormLayout {
  const [n, c] = shape;
  const s = shape.slice(2).reduce((a, b) => a * b, 1);
  const columns = s === 1 && c % 4 === 0;
  const vec = columns || s % 4 === 0;
  const seg = columns ? 1 : vec ? s / 4 : s;
  const groups = columns ? c / 4 : c;
  const chosen = schedule.tuning(n, groups, seg);
  let nb = Math.max(1, tuning.examplesPerBlock ?? chosen.examplesPerBlock);
  nb = Math.max(nb, Math.ceil(n / MAX_LOOP)); // the finalize passes loop over blocks
  const items = Math.min(nb, n) * seg;
  let tpr = tuning.threadsPerUnit ?? chosen.threadsPerUnit;
  tpr = Math.max(tpr, pow2(Math.ceil(items / MAX_LOOP)));
  const wg = Math.max(tuning.workgroupSize ?? chosen.workgroupSize, tpr);
  if (tpr & (tpr - 1) || wg % tpr) {
    throw new Error(
      `batchNorm tuning: threadsPerUnit must be a power of two dividing workgroupSize, ` +
        `got ${tpr} and ${wg}`,
    );
  }
  const blocks = Math.ceil(n / nb);
  return {
    schedule: schedule.name,
    n,
    c,
    s,
    m: n * s,
    columns,
    vec,
    seg,
    groups,
    nb,
    blocks,
    units: blocks * groups,
    rowStride: columns ? c / 4 : c * seg,
    wg,
    tpr,
  };
}

function params(l: BatchNormLayout, eps = 0, factor = 0): Uniforms {
  const { c, groups, units, n, nb, seg, blocks, m } = l;
  return uniforms({
    c,
    groups,
    units,
    n,
    nb,
    seg,
    row_stride: l.rowStride,
    blocks,
    m,
    eps,
    factor,
  });
}

const ACT = { none: 0, relu: 1, sigmoid: 2 } as const; // activationCode()'s codes

function unitOverrides(l: BatchNormLayout, act: keyof typeof ACT = "none") {
  return { WG: l.wg, TPR: l.tpr, VEC: +l.vec, COLUMNS: +l.columns, ACT: ACT[act] };
}

function unitGrid(l: BatchNormLayout): [number, number] {
  return grid(Math.ceil(l.units / (l.wg / l.tpr)));
}

function channelGrid(l: BatchNormLayout): [number, number] {
  return grid(Math.ceil(l.c / CHANNEL_WG));
}

/** Per-channel affine parameters and running statistics; null where absent. */
interface ChannelBuffers {
  weight: GPUBuffer | null;
  bias: GPUBuffer | null;
  runningMean: GPUBuffer | null;
  runningVar: GPUBuffer | null;
  /** The batch counter, incremented after the running update (one value). */
  numBatchesTracked?: GPUBuffer | null;
}

/**
 * Training statistics: `stats` [C] vec4 = (mean, rstd, scale, bias) of `inp`'s batch, and
 * the running statistics updated (when given) with `momentum` (null: 1/k, the cumulative
 * average, k counted by `ch.numBatchesTracked`, which is then incremented). Weight and
 * bias come together or not at all.
 */
export function launchBatchStats(
  l: BatchNormLayout,
  inp: GPUBuffer,
  stats: GPUBuffer,
  ch: ChannelBuffers,
  eps: number,
  momentum: number | null,
): void {
  const partial = allocBuffer(16 * l.blocks * l.c, "batch_norm partial");
  launch({
    label: `batch_norm.unit_stats@${l.schedule}`,
    code: src,
    entryPoint: "unit_stats",
    overrides: unitOverrides(l),
    bindings: [params(l), inp, partial],
    workgroups: unitGrid(l),
  });
  launch({
    label: `batch_norm.stats_finalize@${l.schedule}`,
    code: src,
    entryPoint: "stats_finalize",
    overrides: {
      WG: CHANNEL_WG,
      AFFINE: +(ch.weight !== null),
      TRACK: +(ch.runningMean !== null),
      CUMULATIVE: +(momentum === null),
      // with a momentum nothing reads the count here: channel 0 increments it
      COUNT: +(ch.runningMean !== null && ch.numBatchesTracked != null && momentum !== null),
    },
    bindings: [
      params(l, eps, momentum ?? 0),
      ch.runningMean ?? placeholder(0),
      ch.runningVar ?? placeholder(1),
      ch.weight ?? placeholder(2),
      ch.bias ?? placeholder(3),
      stats,
      partial,
      ch.numBatchesTracked ?? placeholder(4),
    ],
    workgroups: channelGrid(l),
  });
  releaseBuffer(partial);
  if (ch.runningMean && ch.numBatchesTracked && momentum === null) {
    // the cumulative average: every channel read the count above; it is incremented after
    launch({
      label: `batch_norm.count_batch@${l.schedule}`,
      code: src,
      entryPoint: "count_batch",
      bindings: [params(l), ch.numBatchesTracked],
      workgroups: [1],
    });
  }
}

/**
 * Training statistics and the normalized output in one launch, for a layout of one block
 * (`l.blocks === 1`: every unit holds all N examples of its channels): what
 * {@link launchBatchStats} then {@link launchNormalize} compute, including the running
 * update and the batch count (a cumulative average, momentum null, counts in a second
 * launch: every channel reads the count first). With `normalize` false, the statistics
 * alone (`out` unwritten: a placeholder will do).
 */
export function launchForwardFused(
  l: BatchNormLayout,
  inp: GPUBuffer,
  stats: GPUBuffer,
  out: GPUBuffer,
  ch: ChannelBuffers,
  eps: number,
  momentum: number | null,
  act: keyof typeof ACT = "none",
  normalize = true,
): void {
  if (l.blocks !== 1) throw new Error(`forward_fused needs one block, got ${l.blocks}`);
  const track = ch.runningMean !== null;
  const count = track && ch.numBatchesTracked != null;
  launch({
    label: `batch_norm.forward_fused@${l.schedule}`,
    code: src,
    entryPoint: "forward_fused",
    overrides: {
      ...unitOverrides(l, act),
      AFFINE: +(ch.weight !== null),
      TRACK: +track,
      CUMULATIVE: +(momentum === null),
      COUNT: +(count && momentum !== null),
      NORMALIZE: +normalize,
    },
    bindings: [
      params(l, eps, momentum ?? 0),
      inp,
      ch.runningVar ?? placeholder(1),
      out,
      ch.bias ?? placeholder(3),
      stats,
      ch.runningMean ?? placeholder(0),
      ch.weight ?? placeholder(2),
      ch.numBatchesTracked ?? placeholder(4),
    ],
    workgroups: unitGrid(l),
  });
  if (count && momentum === null) {
    launch({
      label: `batch_norm.count_batch@${l.schedule}`,
      code: src,
      entryPoint: "count_batch",
      bindings: [params(l), ch.numBatchesTracked!],
      workgroups: [1],
    });
  }
}

/** Inference statistics: `stats` [C] vec4 from the running mean and variance. */
export function launchEvalStats(
  l: BatchNormLayout,
  stats: GPUBuffer,
  ch: ChannelBuffers,
  eps: number,
): void {
  launch({
    label: `batch_norm.eval_stats@${l.schedule}`,
    code: src,
    entryPoint: "eval_stats",
    overrides: { WG: CHANNEL_WG, AFFINE: +(ch.weight !== null) },
    bindings: [
      params(l, eps),
      ch.runningMean!,
      ch.runningVar!,
      ch.weight ?? placeholder(2),
      ch.bias ?? placeholder(3),
      stats,
    ],
    workgroups: channelGrid(l),
  });
}

/** out = act((inp - mean) * scale + bias) per channel, from `stats`. */
export function launchNormalize(
  l: BatchNormLayout,
  inp: GPUBuffer,
  stats: GPUBuffer,
  out: GPUBuffer,
  act: keyof typeof ACT = "none",
): void {
  launch({
    label: `batch_norm.normalize@${l.schedule}`,
    code: src,
    entryPoint: "normalize",
    overrides: unitOverrides(l, act),
    bindings: [params(l), inp, stats, out],
    workgroups: unitGrid(l),
  });
}

/**
 * The backward from `dout` (of the activation's output `out` when `act` is given):
 * dweight and dbias (when given) and dinp (when given). A layout of one block runs it as
 * one launch (`backward_fused`), any other as three.
 */
export function launchBatchNormBackward(
  l: BatchNormLayout,
  b: {
    inp: GPUBuffer;
    out: GPUBuffer;
    dout: GPUBuffer;
    stats: GPUBuffer;
    weight: GPUBuffer | null;
    dinp: GPUBuffer | null;
    dweight: GPUBuffer | null;
    dbias: GPUBuffer | null;
  },
  training: boolean,
  act: keyof typeof ACT = "none",
): void {
  const saved = act === "none" ? placeholder(0) : b.out;
  if (l.blocks === 1) {
    launch({
      label: `batch_norm.backward_fused@${l.schedule}`,
      code: src,
      entryPoint: "backward_fused",
      overrides: {
        ...unitOverrides(l, act),
        AFFINE: +(b.weight !== null),
        EVAL: +!training,
        DINP: +(b.dinp !== null),
      },
      bindings: [
        params(l),
        b.inp,
        b.stats,
        saved,
        b.dout,
        b.dinp ?? placeholder(1),
        b.dweight ?? placeholder(2),
        null, // (the weight: its product with rstd is stats' scale)
        b.dbias ?? placeholder(4),
      ],
      workgroups: unitGrid(l),
    });
    return;
  }
  const partial = allocBuffer(16 * l.blocks * l.c, "batch_norm partial");
  const coef = allocBuffer(16 * l.c, "batch_norm coef");
  launch({
    label: `batch_norm.grad_partial@${l.schedule}`,
    code: src,
    entryPoint: "grad_partial",
    overrides: unitOverrides(l, act),
    bindings: [params(l), b.inp, b.stats, saved, b.dout, partial],
    workgroups: unitGrid(l),
  });
  launch({
    label: `batch_norm.grad_finalize@${l.schedule}`,
    code: src,
    entryPoint: "grad_finalize",
    overrides: { WG: CHANNEL_WG, AFFINE: +(b.weight !== null), EVAL: +!training },
    bindings: [
      params(l),
      partial,
      b.stats,
      b.weight ?? placeholder(0),
      b.dweight ?? placeholder(1),
      b.dbias ?? placeholder(2),
      coef,
    ],
    workgroups: channelGrid(l),
  });
  releaseBuffer(partial);
  if (b.dinp) {
    launch({
      label: `batch_norm.grad_inp@${l.schedule}`,
      code: src,
      entryPoint: "grad_inp",
      overrides: unitOverrides(l, act),
      bindings: [params(l), b.inp, coef, saved, b.dout, b.dinp],
      workgroups: unitGrid(l),
    });
  }
  releaseBuffer(coef);
}

/**
 * The backward of batch norm, `act` and a 2x2 max pool of stride 2 over an input of width
 * `w` (a multiple of 4) pooled to `oh` rows, in one launch (batch_norm.wgsl's
 * backward_pooled): from the pool's output gradient `dres`, its output `pooled` and winners
 * `idx`, for a layout of one block. What the pool's backward and {@link launchBatchNormBackward}
 * compute, without the full-size gradient between them.
 */
function launchPooledBackward(
  l: BatchNormLayout,
  w: number,
  oh: number,
  b: {
    inp: GPUBuffer;
    stats: GPUBuffer;
    pooled: GPUBuffer;
    dres: GPUBuffer;
    idx: GPUBuffer;
    dinp: GPUBuffer | null;
    dweight: GPUBuffer | null;
    dbias: GPUBuffer | null;
  },
  training: boolean,
  act: keyof typeof ACT,
): void {
  if (l.blocks !== 1 || l.columns || !l.vec || w % 4 !== 0) {
    throw new Error(
      `batch norm's pooled backward needs one block of rows of vec4s, got ${l.blocks} ` +
        `blocks${l.columns ? ", columns" : ""}, width ${w}`,
    );
  }
  launch({
    label: `batch_norm.backward_pooled@${l.schedule}`,
    code: src,
    entryPoint: "backward_pooled",
    overrides: {
      ...unitOverrides(l),
      AFFINE: +(b.dweight !== null),
      EVAL: +!training,
      DINP: +(b.dinp !== null),
      POOL_ACT: ACT[act],
      W4: w / 4,
      PSEG: (oh * w) / 4,
    },
    bindings: [
      params(l),
      b.inp,
      b.stats,
      act === "none" ? placeholder(0) : b.pooled,
      b.dres,
      b.dinp ?? placeholder(1),
      b.dweight ?? placeholder(2),
      b.idx,
      b.dbias ?? placeholder(3),
    ],
    workgroups: unitGrid(l),
  });
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
 * (scale 1, shift 0). With `activation`, returns `relu(y)` or `sigmoid(y)` from the same
 * kernel. Gradients flow to `inp`, `weight` and `bias`, never to the running statistics.
 *
 * Shape: inp [N, C, *], runningMean/runningVar/weight/bias [C], output like inp.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const x = Tensor.from([[1, 10], [3, 30]]); // N = 2 examples, C = 2 features
 * const runningMean = Tensor.zeros([2]);
 * const runningVar = Tensor.ones([2]);
 * const y = F.batchNorm(x, runningMean, runningVar, null, null, { training: true });
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
  return batchNormThen(inp, runningMean, runningVar, weight, bias, opts, null);
}

/**
 * {@link batchNorm} (with its activation, if any) then 2x2 max pooling of stride 2, as
 * `maxPool2d(batchNorm(x, ..., { activation }), 2)`, where the pool has a fused kernel
 * ({@link takesNormalizedPool}: [N, C, H, W] with W a multiple of 4, on llvmpipe's
 * schedule) in two passes forward: the statistics, then the pool reading the input and
 * normalizing it as it goes, so that the normalized values are never stored. The backward
 * is one pass when batch norm's layout is one block (small batches: batch_norm.wgsl's
 * backward_pooled sums over the pooled gradients and the inputs at the windows' winners,
 * then writes dinp), else the pool's backward routes the pooled gradient to the normalized
 * values and batch norm's backward follows. Elsewhere the two ops. `nn.Sequential` uses it
 * for BatchNorm2d, Sigmoid or ReLU, MaxPool2d(2).
 *
 * Shape: inp [N, C, H, W], runningMean/runningVar/weight/bias [C] -> [N, C, H / 2, W / 2]
 * (rounded down).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const x = Tensor.randn([2, 3, 4, 4], { seed: 1 });
 * const opts = { training: true, activation: "sigmoid" } as const;
 * const fused = F.batchNormMaxPool2d(x, null, null, null, null, opts);
 * const apart = F.maxPool2d(F.batchNorm(x, null, null, null, null, opts), 2);
 * const [a, b] = [await fused.toArray(), await apart.toArray()];
 * assert.deepEqual(fused.shape, [2, 3, 2, 2]);
 * assert.ok(a.every((v, i) => Math.abs(v - b[i]) < 1e-6));
 * ```
 */
export function batchNormMaxPool2d(
  inp: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: BatchNormOptions & { poolSchedule?: PoolSchedule } = {},
): Tensor {
  const { poolSchedule: pool = poolSchedule(), ...bn } = opts;
  return batchNormThen(inp, runningMean, runningVar, weight, bias, bn, pool);
}

/** batchNorm, then, with `pool`, the 2x2 max pool (see {@link batchNormMaxPool2d}). */
function batchNormThen(
  inp: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  opts: BatchNormOptions,
  pool: PoolSchedule | null,
): Tensor {
  checkTensor("batchNorm", "input", inp);
  checkTensor("batchNorm", "runningMean", runningMean, true);
  checkTensor("batchNorm", "runningVar", runningVar, true);
  checkTensor("batchNorm", "weight", weight, true);
  checkTensor("batchNorm", "bias", bias, true);
  const { training = false, momentum = 0.1, eps = 1e-5, activation, schedule } = opts;
  const { numBatchesTracked = null } = opts;
  if (inp.rank < 2) {
    throw new Error(
      `batchNorm expects input with at least 2 dimensions [N, C, ...], got ${fmt(inp.shape)}`,
    );
  }
  const c = inp.shape[1];
  for (const [t, name] of [[runningMean, "runningMean"], [runningVar, "runningVar"]] as const) {
    checkChannelTensor(t, name, c, inp);
  }
  checkChannelTensor(weight, "weight", c, inp);
  checkChannelTensor(bias, "bias", c, inp);
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
  if (training && inp.numel / c <= 1) {
    throw new Error(
      `Expected more than 1 value per channel when training, got input size ${fmt(inp.shape)}`,
    );
  }
  activationCode("batchNorm", activation); // refuses an unknown one
  const act = activation ?? "none";
  const l = batchNormLayout(inp.shape, {}, schedule ?? batchNormSchedule());
  // The kernels take weight and bias together: a lone one gets its neutral partner.
  const ownW = !weight && bias ? Tensor.ones([c]) : null;
  const ownB = weight && !bias ? Tensor.zeros([c]) : null;
  const w = weight ?? ownW, b = bias ?? ownB;
  const ch: ChannelBuffers = {
    weight: w?.buffer ?? null,
    bias: b?.buffer ?? null,
    runningMean: runningMean?.buffer ?? null,
    runningVar: runningVar?.buffer ?? null,
    numBatchesTracked: numBatchesTracked?.buffer ?? null,
  };
  if (pool && !takesNormalizedPool(inp.shape, pool)) {
    ownW?.dispose();
    ownB?.dispose();
    const bn = { ...opts, activation: undefined };
    const y = batchNormThen(inp, runningMean, runningVar, weight, bias, bn, null);
    return maxPool2d(y, 2, { activation, schedule: pool });
  }
  const stats = Tensor.empty([c, 4]); // (mean, rstd, scale, bias): the backward's cache
  // With the pool, the normalized values are the pool's input, never stored.
  const out = pool ? null : Tensor.empty(inp.shape);
  const into = out?.buffer ?? placeholder(5);
  if (training) {
    if (l.blocks === 1) {
      launchForwardFused(l, inp.buffer, stats.buffer, into, ch, eps, momentum, act, !pool);
    } else {
      launchBatchStats(l, inp.buffer, stats.buffer, ch, eps, momentum);
      if (out) launchNormalize(l, inp.buffer, stats.buffer, out.buffer, act);
    }
    // In-place updates: a backward that saved these before now would be refused.
    for (const t of [runningMean, runningVar]) if (t) markWritten(t);
    if (runningMean && numBatchesTracked) markWritten(numBatchesTracked);
  } else {
    launchEvalStats(l, stats.buffer, ch, eps); // a snapshot: later updates do not leak in
    if (out) launchNormalize(l, inp.buffer, stats.buffer, out.buffer, act);
  }
  const pooled = pool ? normalizedMaxPool2d(inp, stats.buffer, activation, pool) : null;
  const res = pooled?.out ?? out!;
  const parents = [inp, weight, bias].filter((t): t is Tensor => t !== null);
  const name = (activation ? `batchNorm+${activation}` : "batchNorm") +
    (pool ? "+maxPool2d" : "");
  const saved = [stats, ...[ownW, ownB, pooled?.idx].filter((t): t is Tensor => !!t)];
  record(res, name, parents, (dres) => {
    const dweight = w ? Tensor.empty([c]) : null;
    const dbias = w ? Tensor.empty([c]) : null;
    const dinp = inp.requiresGrad ? Tensor.empty(inp.shape) : null;
    // what the caller gets, after the launch that wrote them (a stand-in's are dropped)
    const grads = (): (Tensor | null)[] => {
      const g: (Tensor | null)[] = [dinp];
      if (weight) g.push(dweight);
      else dweight?.dispose();
      if (bias) g.push(dbias);
      else dbias?.dispose();
      return g;
    };
    if (pooled && l.blocks === 1) {
      launchPooledBackward(
        l,
        inp.shape[3],
        pooled.out.shape[2],
        {
          inp: inp.buffer,
          stats: stats.buffer,
          pooled: pooled.out.buffer,
          dres: dres.buffer,
          idx: pooled.idx.buffer,
          dinp: dinp?.buffer ?? null,
          dweight: dweight?.buffer ?? null,
          dbias: dbias?.buffer ?? null,
        },
        training,
        act,
      );
      return grads();
    }
    // the pool's backward first: the gradient of the normalized values (its activation's
    // derivative included), which batch norm's backward then takes without one
    const dout = pooled ? pooled.grad(dres) : dres;
    launchBatchNormBackward(
      l,
      {
        inp: inp.buffer,
        out: res.buffer,
        dout: dout.buffer,
        stats: stats.buffer,
        weight: w?.buffer ?? null,
        dinp: dinp?.buffer ?? null,
        dweight: dweight?.buffer ?? null,
        dbias: dbias?.buffer ?? null,
      },
      training,
      pooled ? "none" : act,
    );
    if (dout !== dres) dout.dispose();
    return grads();
  }, saved);
  if (!res.requiresGrad) {
    // Not recorded: nothing will read the caches or the stand-ins again.
    for (const t of saved) t.dispose();
  }
  return res;
}
