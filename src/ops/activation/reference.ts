/**
 * Float64 references for the fused activations, as naive loops.
 *
 * @module
 */

/**
 * out[i] = 1 / (1 + exp(-inp[i])).
 */
export function refSigmoidForward(inp: ArrayLike<number>): Float64Array {
  const out = new Float64Array(inp.length);
  for (let i = 0; i < inp.length; i++) out[i] = 1 / (1 + Math.exp(-inp[i]));
  return out;
}

/**
 * dinp[i] = dout[i] * out[i] * (1 - out[i]), from the forward's output.
 */
export function refSigmoidBackward(out: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  const dinp = new Float64Array(out.length);
  for (let i = 0; i < out.length; i++) dinp[i] = dout[i] * out[i] * (1 - out[i]);
  return dinp;
}

/**
 * out[i] = max(inp[i], 0).
 */
export function refReluForward(inp: ArrayLike<number>): Float64Array {
  const out = new Float64Array(inp.length);
  for (let i = 0; i < inp.length; i++) out[i] = inp[i] > 0 ? inp[i] : 0;
  return out;
}

/**
 * dinp[i] = dout[i] if inp[i] > 0 else 0 (PyTorch's convention at 0: gradient 0).
 */
export function refReluBackward(inp: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  const dinp = new Float64Array(inp.length);
  for (let i = 0; i < inp.length; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0;
  return dinp;
}
