/**
 * Float64 reference for the linear layer, as naive loops (llm.c style): the ground truth
 * that `matmul.wgsl` is tested against. Row-major flat arrays throughout.
 *
 * @module
 */

/**
 * out[n, o] = sum_i inp[n, i] * weight[o, i] + bias[o].
 * Shapes: inp [N, I], weight [O, I], bias [O] or null, out [N, O].
 */
export function refLinearForward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  N: number,
  I: number,
  O: number,
): Float64Array {
  const out = new Float64Array(N * O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < I; i++) s += inp[n * I + i] * weight[o * I + i];
      out[n * O + o] = s;
    }
  }
  return out;
}

/** Gradients of {@link refLinearForward}. */
export interface LinearGrads {
  /** dinp [N, I] = dout @ weight. */
  dinp: Float64Array;
  /** dweight [O, I] = dout^T @ inp. */
  dweight: Float64Array;
  /** dbias [O] = sum over n of dout. */
  dbias: Float64Array;
}

/**
 * Backward of {@link refLinearForward} given dout [N, O].
 */
export function refLinearBackward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  dout: ArrayLike<number>,
  N: number,
  I: number,
  O: number,
): LinearGrads {
  const dinp = new Float64Array(N * I);
  const dweight = new Float64Array(O * I);
  const dbias = new Float64Array(O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const d = dout[n * O + o];
      dbias[o] += d;
      for (let i = 0; i < I; i++) {
        dinp[n * I + i] += d * weight[o * I + i];
        dweight[o * I + i] += d * inp[n * I + i];
      }
    }
  }
  return { dinp, dweight, dbias };
}
