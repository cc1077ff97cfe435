/**
 * Float64 CPU reference for batch normalization, written as naive loops over
 * (n, c, s) with the input viewed as [N, C, S] (S = product of the dims after C). It
 * shares no code with the GPU path. Per channel c, over its M = N*S values:
 *
 *     mean = (1/M) sum x          var = (1/M) sum (x - mean)^2  (biased)
 *     xhat = (x - mean) / sqrt(var + eps)        out = weight * xhat + bias
 *
 * Gradients follow llm.c's reference convention: `dout` in, fresh `dinp`, `dweight`,
 * `dbias` out (they overwrite, nothing accumulates).
 *
 * @module
 */
import type { RefArray } from "../elementwise/reference.ts";
import {
  refReluBackward,
  refReluForward,
  refSigmoidBackward,
  refSigmoidForward,
} from "../activation/reference.ts";

/** Per-channel statistics used to normalize: batch statistics, or running ones in eval. */
export interface RefStats {
  /** Per-channel mean, [C]. */
  mean: Float64Array;
  /** Biased variance (training) or running variance (eval). */
  var: Float64Array;
}

/** Result of {@link refBatchNormForward}. */
export interface RefBatchNormForward {
  /** The normalized, scaled and shifted output, shaped like the input. */
  out: RefArray;
  /** The mean that normalized (the batch's in training mode), [C]. */
  mean: Float64Array;
  /** 1 / sqrt(var + eps) per channel. */
  rstd: Float64Array;
}

/** Gradients from {@link refBatchNormBackward}. */
export interface RefBatchNormGrads {
  /** Gradient of the input, shaped like it. */
  dinp: RefArray;
  /** Gradient of weight, [C]: sum of dout * xhat. */
  dweight: Float64Array;
  /** Gradient of bias, [C]: sum of dout. */
  dbias: Float64Array;
}

/**
 * [N, C, S] of a shape [N, C, ...]: examples, channels, positions per channel.
 */
export function refDims(shape: readonly number[]): [number, number, number] {
  let s = 1;
  for (let d = 2; d < shape.length; d++) s *= shape[d];
  return [shape[0], shape[1], s];
}

/**
 * Batch statistics per channel: mean and biased variance, two passes (mean, then the
 * centred sum of squares).
 */
export function refBatchStats(inp: RefArray): RefStats {
  const [N, C, S] = refDims(inp.shape);
  const M = N * S;
  const mean = new Float64Array(C), v = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) sum += inp.data[(n * C + c) * S + s];
    mean[c] = sum / M;
    let sq = 0;
    for (let n = 0; n < N; n++) {
      for (let s = 0; s < S; s++) sq += (inp.data[(n * C + c) * S + s] - mean[c]) ** 2;
    }
    v[c] = sq / M;
  }
  return { mean, var: v };
}

/**
 * out = weight * (x - mean) / sqrt(var + eps) + bias per channel, with the batch
 * statistics, or with `stats` (running statistics, inference mode) when given.
 * `weight`/`bias` null mean 1 and 0.
 */
export function refBatchNormForward(
  inp: RefArray,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps: number,
  stats?: RefStats,
): RefBatchNormForward {
  const [N, C, S] = refDims(inp.shape);
  const { mean, var: v } = stats ?? refBatchStats(inp);
  const rstd = new Float64Array(C);
  for (let c = 0; c < C; c++) rstd[c] = 1 / Math.sqrt(v[c] + eps);
  const out = new Float64Array(inp.data.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let s = 0; s < S; s++) {
        const i = (n * C + c) * S + s;
        const xhat = (inp.data[i] - mean[c]) * rstd[c];
        out[i] = (weight ? weight[c] : 1) * xhat + (bias ? bias[c] : 0);
      }
    }
  }
  return { out: { shape: [...inp.shape], data: out }, mean: Float64Array.from(mean), rstd };
}

/**
 * Gradients of {@link refBatchNormForward} (same arguments) given `dout`:
 *
 *     dbias = sum dout      dweight = sum dout * xhat
 *     training: dinp = weight * rstd * (dout - mean(dout) - xhat * mean(dout * xhat))
 *     eval (stats given, constants): dinp = weight * rstd * dout
 */
export function refBatchNormBackward(
  dout: RefArray,
  inp: RefArray,
  weight: ArrayLike<number> | null,
  eps: number,
  stats?: RefStats,
): RefBatchNormGrads {
  const [N, C, S] = refDims(inp.shape);
  const M = N * S;
  const { mean, rstd } = refBatchNormForward(inp, null, null, eps, stats);
  const dweight = new Float64Array(C), dbias = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let s = 0; s < S; s++) {
        const i = (n * C + c) * S + s;
        dbias[c] += dout.data[i];
        dweight[c] += dout.data[i] * (inp.data[i] - mean[c]) * rstd[c];
      }
    }
  }
  const dinp = new Float64Array(inp.data.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const w = weight ? weight[c] : 1;
      for (let s = 0; s < S; s++) {
        const i = (n * C + c) * S + s;
        const xhat = (inp.data[i] - mean[c]) * rstd[c];
        dinp[i] = stats
          ? w * rstd[c] * dout.data[i]
          : w * rstd[c] * (dout.data[i] - dbias[c] / M - xhat * dweight[c] / M);
      }
    }
  }
  return { dinp: { shape: [...inp.shape], data: dinp }, dweight, dbias };
}

/**
 * One running-statistics update, as PyTorch's training step:
 * `running = (1 - momentum) * running + momentum * batch`, with the unbiased batch
 * variance (var * M/(M-1)) for the running variance. Returns new arrays.
 */
export function refRunningUpdate(running: RefStats, inp: RefArray, momentum: number): RefStats {
  const [N, , S] = refDims(inp.shape);
  const M = N * S;
  const batch = refBatchStats(inp);
  const mean = running.mean.map((r, c) => (1 - momentum) * r + momentum * batch.mean[c]);
  const v = running.var.map((r, c) => (1 - momentum) * r + momentum * batch.var[c] * M / (M - 1));
  return { mean, var: v };
}

/** An activation fused after batch normalization. */
export type RefActivation = "relu" | "sigmoid";

/**
 * act(batch norm of `inp`): {@link refBatchNormForward} followed by relu or sigmoid,
 * elementwise, in float64. Returns the activation's output and the normalized `y` it was
 * applied to.
 */
export function refBatchNormActForward(
  inp: RefArray,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps: number,
  act: RefActivation,
  stats?: RefStats,
): { out: RefArray; y: RefArray } {
  const y = refBatchNormForward(inp, weight, bias, eps, stats).out;
  const out = act === "relu" ? refReluForward(y.data) : refSigmoidForward(y.data);
  return { out: { shape: [...inp.shape], data: out }, y };
}

/**
 * Gradients of {@link refBatchNormActForward}: the chain rule through the activation,
 * g = dout * act'(y) (relu: y > 0; sigmoid: s (1 - s) with s = sigmoid(y)), then
 * {@link refBatchNormBackward} from g.
 */
export function refBatchNormActBackward(
  dout: RefArray,
  inp: RefArray,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps: number,
  act: RefActivation,
  stats?: RefStats,
): RefBatchNormGrads {
  const { out, y } = refBatchNormActForward(inp, weight, bias, eps, act, stats);
  const g = act === "relu"
    ? refReluBackward(y.data, dout.data)
    : refSigmoidBackward(out.data, dout.data);
  return refBatchNormBackward({ shape: [...inp.shape], data: g }, inp, weight, eps, stats);
}
