/**
 * Float64 reference for normalization over blocks (GroupNorm, ghost batch norm), as naive
 * loops over (n, c, s) with the input viewed as [N, C, S]: the ground truth that
 * `block_norm.wgsl` is tested against. It shares no code with the GPU path (no row
 * partials, no Chan merge: each set's mean, then its centred sum of squares).
 *
 * A set is a block of `bn` consecutive examples (the last block holds the remainder) by
 * `bc` consecutive channels, all S positions; set (a, b) has index a * (C / bc) + b.
 * GroupNorm(G) is bn = 1, bc = C / G; ghost batch norm with virtual batch V is bn = V,
 * bc = 1. Gradients follow llm.c's reference convention: fresh arrays, nothing accumulates.
 *
 * @module
 */
import type { RefArray } from "../elementwise/reference.ts";
import { refDims } from "../batch_norm/reference.ts";

/** Result of {@link refBlockNormForward}. */
export interface RefBlockNormForward {
  /** (x - mean) * rstd * weight[c] + bias[c], shaped like the input. */
  out: RefArray;
  /** Mean of each set, [ceil(N / bn) * (C / bc)]. */
  mean: Float64Array;
  /** 1 / sqrt(biased variance + eps) of each set. */
  rstd: Float64Array;
}

/** Gradients from {@link refBlockNormBackward}. */
export interface RefBlockNormGrads {
  /** Gradient of the input, shaped like it. */
  dinp: RefArray;
  /** Per channel: sum over examples and positions of dout * xhat. */
  dweight: Float64Array;
  /** Per channel: sum over examples and positions of dout. */
  dbias: Float64Array;
}

/** Calls `f(set, n, c)` for every row (n, c) of every set, set by set. */
function forEachRow(
  N: number,
  C: number,
  bn: number,
  bc: number,
  f: (set: number, n: number, c: number) => void,
): void {
  const AB = Math.ceil(N / bn), CB = C / bc;
  for (let a = 0; a < AB; a++) {
    for (let b = 0; b < CB; b++) {
      for (let n = a * bn; n < Math.min(a * bn + bn, N); n++) {
        for (let c = b * bc; c < b * bc + bc; c++) f(a * CB + b, n, c);
      }
    }
  }
}

/**
 * Normalizes each set of `bn` examples x `bc` channels x S positions with its mean and
 * biased variance, then applies `weight[c]` and `bias[c]` (null: 1 and 0).
 */
export function refBlockNormForward(
  inp: RefArray,
  bn: number,
  bc: number,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps: number,
): RefBlockNormForward {
  const [N, C, S] = refDims(inp.shape);
  const sets = Math.ceil(N / bn) * (C / bc);
  const sum = new Float64Array(sets), count = new Float64Array(sets);
  forEachRow(N, C, bn, bc, (q, n, c) => {
    for (let s = 0; s < S; s++) sum[q] += inp.data[(n * C + c) * S + s];
    count[q] += S;
  });
  const mean = sum.map((v, q) => v / count[q]);
  const sq = new Float64Array(sets);
  forEachRow(N, C, bn, bc, (q, n, c) => {
    for (let s = 0; s < S; s++) sq[q] += (inp.data[(n * C + c) * S + s] - mean[q]) ** 2;
  });
  const rstd = sq.map((v, q) => 1 / Math.sqrt(v / count[q] + eps));
  const out = new Float64Array(inp.data.length);
  forEachRow(N, C, bn, bc, (q, n, c) => {
    for (let s = 0; s < S; s++) {
      const i = (n * C + c) * S + s;
      out[i] = (inp.data[i] - mean[q]) * rstd[q] * (weight ? weight[c] : 1) + (bias ? bias[c] : 0);
    }
  });
  return { out: { shape: [...inp.shape], data: out }, mean, rstd };
}

/**
 * Gradients of {@link refBlockNormForward} (same `inp`, `bn`, `bc`, `weight`, `eps`) given
 * `dout`. With xhat = (x - mean) * rstd and g = dout * weight[c], per set of M values:
 *
 *     dinp = rstd * (g - (1/M) sum g - xhat * (1/M) sum g * xhat)
 *     dweight[c] = sum dout * xhat        dbias[c] = sum dout   (over examples, positions)
 */
export function refBlockNormBackward(
  dout: RefArray,
  inp: RefArray,
  bn: number,
  bc: number,
  weight: ArrayLike<number> | null,
  eps: number,
): RefBlockNormGrads {
  const [N, C, S] = refDims(inp.shape);
  const { mean, rstd } = refBlockNormForward(inp, bn, bc, null, null, eps);
  const sets = mean.length;
  const sg = new Float64Array(sets), sgx = new Float64Array(sets), count = new Float64Array(sets);
  const dweight = new Float64Array(C), dbias = new Float64Array(C);
  forEachRow(N, C, bn, bc, (q, n, c) => {
    for (let s = 0; s < S; s++) {
      const i = (n * C + c) * S + s;
      const xhat = (inp.data[i] - mean[q]) * rstd[q];
      const g = dout.data[i] * (weight ? weight[c] : 1);
      sg[q] += g;
      sgx[q] += g * xhat;
      dweight[c] += dout.data[i] * xhat;
      dbias[c] += dout.data[i];
    }
    count[q] += S;
  });
  const dinp = new Float64Array(inp.data.length);
  forEachRow(N, C, bn, bc, (q, n, c) => {
    for (let s = 0; s < S; s++) {
      const i = (n * C + c) * S + s;
      const xhat = (inp.data[i] - mean[q]) * rstd[q];
      const g = dout.data[i] * (weight ? weight[c] : 1);
      dinp[i] = rstd[q] * (g - sg[q] / count[q] - xhat * sgx[q] / count[q]);
    }
  });
  return { dinp: { shape: [...inp.shape], data: dinp }, dweight, dbias };
}

/** Per-channel running statistics. */
export interface RefRunning {
  /** Running mean, [C]. */
  mean: Float64Array;
  /** Running (unbiased) variance, [C]. */
  var: Float64Array;
}

/**
 * One training step's update of ghost batch norm's running statistics, per channel:
 * `running = (1 - momentum) * running + momentum * stat`, where the mean's stat is the
 * mean of the whole batch and the variance's is the pooled within-ghost-batch variance,
 * sum over ghost batches of their sums of squared deviations (each from its own mean)
 * divided by sum over ghost batches of (values - 1). Returns new arrays.
 */
export function refGhostRunningUpdate(
  running: RefRunning,
  inp: RefArray,
  virtualBatchSize: number,
  momentum: number,
): RefRunning {
  const [N, C, S] = refDims(inp.shape);
  const mean = new Float64Array(C), v = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let total = 0;
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) total += inp.data[(n * C + c) * S + s];
    let within = 0, dof = 0;
    for (let n0 = 0; n0 < N; n0 += virtualBatchSize) {
      const n1 = Math.min(n0 + virtualBatchSize, N);
      let sum = 0;
      for (let n = n0; n < n1; n++) {
        for (let s = 0; s < S; s++) sum += inp.data[(n * C + c) * S + s];
      }
      const m = (n1 - n0) * S, mu = sum / m;
      for (let n = n0; n < n1; n++) {
        for (let s = 0; s < S; s++) within += (inp.data[(n * C + c) * S + s] - mu) ** 2;
      }
      dof += m - 1;
    }
    mean[c] = (1 - momentum) * running.mean[c] + momentum * total / (N * S);
    v[c] = (1 - momentum) * running.var[c] + momentum * within / dof;
  }
  return { mean, var: v };
}
