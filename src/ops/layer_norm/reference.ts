/**
 * Float64 reference for layer normalization, as naive loops (llm.c style): the ground
 * truth that `layer_norm.wgsl` is tested against. The input is viewed as M rows of D
 * elements (D = the product of the normalized dims); row-major flat arrays throughout.
 *
 * @module
 */

/** Output of {@link refLayerNormForward}: the result and the per-row cache for the backward. */
export interface LayerNormOutput {
  /** out [M, D] = (inp - mean) * rstd * weight + bias. */
  out: Float64Array;
  /** mean [M] of each row. */
  mean: Float64Array;
  /** rstd [M] = 1 / sqrt(var + eps), var the biased variance of each row. */
  rstd: Float64Array;
}

/**
 * Layer norm of each row: out[m, j] = (inp[m, j] - mean[m]) * rstd[m] * weight[j] + bias[j].
 * Shapes: inp [M, D], weight [D] or null (ones), bias [D] or null (zeros).
 */
export function refLayerNormForward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  M: number,
  D: number,
  eps: number,
): LayerNormOutput {
  const out = new Float64Array(M * D);
  const mean = new Float64Array(M);
  const rstd = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += inp[m * D + j];
    const mu = s / D;
    let v = 0;
    for (let j = 0; j < D; j++) v += (inp[m * D + j] - mu) ** 2;
    const r = 1 / Math.sqrt(v / D + eps);
    for (let j = 0; j < D; j++) {
      const xhat = (inp[m * D + j] - mu) * r;
      out[m * D + j] = xhat * (weight ? weight[j] : 1) + (bias ? bias[j] : 0);
    }
    mean[m] = mu;
    rstd[m] = r;
  }
  return { out, mean, rstd };
}

/** Gradients of {@link refLayerNormForward}. */
export interface LayerNormGrads {
  /** dinp [M, D] = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)), g = dout * weight. */
  dinp: Float64Array;
  /** dweight [D] = sum over rows of dout * xhat. */
  dweight: Float64Array;
  /** dbias [D] = sum over rows of dout. */
  dbias: Float64Array;
}

/**
 * Backward of {@link refLayerNormForward} given dout [M, D] and its saved mean and rstd.
 * With xhat = (inp - mean) * rstd and g = dout * weight, each row's
 * dinp = rstd * (g - 1/D sum_k g[k] - xhat * 1/D sum_k g[k] xhat[k]):
 * the gradient through xhat, minus its projection on the two directions (the constant and
 * xhat itself) along which normalization removes the mean and the scale.
 */
export function refLayerNormBackward(
  dout: ArrayLike<number>,
  inp: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  weight: ArrayLike<number> | null,
  M: number,
  D: number,
): LayerNormGrads {
  const dinp = new Float64Array(M * D);
  const dweight = new Float64Array(D);
  const dbias = new Float64Array(D);
  for (let m = 0; m < M; m++) {
    let sg = 0, sgx = 0;
    for (let j = 0; j < D; j++) {
      const xhat = (inp[m * D + j] - mean[m]) * rstd[m];
      const g = dout[m * D + j] * (weight ? weight[j] : 1);
      sg += g;
      sgx += g * xhat;
      dweight[j] += dout[m * D + j] * xhat;
      dbias[j] += dout[m * D + j];
    }
    for (let j = 0; j < D; j++) {
      const xhat = (inp[m * D + j] - mean[m]) * rstd[m];
      const g = dout[m * D + j] * (weight ? weight[j] : 1);
      dinp[m * D + j] = rstd[m] * (g - sg / D - xhat * sgx / D);
    }
  }
  return { dinp, dweight, dbias };
}
