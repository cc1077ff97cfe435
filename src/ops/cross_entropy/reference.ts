/**
 * Float64 references for softmax cross-entropy and the correct-prediction count, as naive
 * loops.
 *
 * @module
 */

/**
 * Mean cross-entropy of rows of logits: (1/N) sum_n (log sum_c exp(inp[n, c]) - inp[n, t_n]),
 * computed stably (max subtracted), over the rows whose target is not `ignoreIndex` (N
 * counts those). Shapes: inp [N, C], target [N] (class indices).
 */
export function refCrossEntropyForward(
  inp: ArrayLike<number>,
  target: ArrayLike<number>,
  N: number,
  C: number,
  ignoreIndex = -100,
): number {
  let loss = 0, counted = 0;
  for (let n = 0; n < N; n++) {
    if (target[n] === ignoreIndex) continue; // left out of the sum and of the mean
    counted++;
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, inp[n * C + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(inp[n * C + c] - m);
    loss += m + Math.log(s) - inp[n * C + target[n]];
  }
  return loss / counted;
}

/**
 * Gradient of {@link refCrossEntropyForward} times the upstream scalar `dout`:
 * dinp[n, c] = dout * (softmax(inp[n])[c] - [c == t_n]) / N.
 */
export function refCrossEntropyBackward(
  inp: ArrayLike<number>,
  target: ArrayLike<number>,
  N: number,
  C: number,
  dout = 1,
  ignoreIndex = -100,
): Float64Array {
  const dinp = new Float64Array(N * C);
  let counted = 0;
  for (let n = 0; n < N; n++) if (target[n] !== ignoreIndex) counted++;
  for (let n = 0; n < N; n++) {
    if (target[n] === ignoreIndex) continue; // no gradient

    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, inp[n * C + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(inp[n * C + c] - m);
    for (let c = 0; c < C; c++) {
      const softmax = Math.exp(inp[n * C + c] - m) / s;
      dinp[n * C + c] = dout * (softmax - (c === target[n] ? 1 : 0)) / counted;
    }
  }
  return dinp;
}

/**
 * Number of rows whose argmax (the first maximum on ties, as `torch.argmax`) equals the
 * target.
 */
export function refCountCorrect(
  inp: ArrayLike<number>,
  target: ArrayLike<number>,
  N: number,
  C: number,
): number {
  let correct = 0;
  for (let n = 0; n < N; n++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (inp[n * C + c] > inp[n * C + best]) best = c;
    if (best === target[n]) correct++;
  }
  return correct;
}
