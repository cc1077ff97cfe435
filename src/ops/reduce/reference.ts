/**
 * Float64 CPU reference for `sum` and `mean` over any set of dimensions, written as naive
 * loops over the input: each input element is added into the output element it reduces
 * to. The backward spreads `dout` back over the reduced positions (times 1/n for the mean).
 * It shares no code with the GPU path, dims normalisation included.
 *
 * @module
 */
import type { RefArray } from "../elementwise/reference.ts";

/** Dims as the GPU ops take them: one dim, a list (negative counts from the end), or all. */
export type RefDims = number | readonly number[] | undefined;

/** Which input dimensions are reduced, as booleans (negative dims count from the end). */
function reducedMask(dims: RefDims, rank: number): boolean[] {
  const mask = new Array<boolean>(rank).fill(dims === undefined);
  const list = dims === undefined ? [] : typeof dims === "number" ? [dims] : dims;
  for (const d of list) {
    const k = d < 0 ? d + rank : d;
    if (k < 0 || k >= rank) throw new Error(`Dimension ${d} is out of range for rank ${rank}`);
    mask[k] = true;
  }
  return mask;
}

/** Output shape, and for every input element the index of its output element. */
function outputMap(
  shape: readonly number[],
  dims: RefDims,
  keepdim: boolean,
): { outShape: number[]; target: Int32Array; count: number } {
  const mask = reducedMask(dims, shape.length);
  const outShape: number[] = [];
  shape.forEach((s, d) => {
    if (!mask[d]) outShape.push(s);
    else if (keepdim) outShape.push(1);
  });
  let n = 1, count = 1;
  shape.forEach((s, d) => {
    n *= s;
    if (mask[d]) count *= s;
  });
  const target = new Int32Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let o = 0;
    for (let d = 0; d < shape.length; d++) if (!mask[d]) o = o * shape[d] + idx[d];
    target[i] = o;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return { outShape, target, count };
}

/**
 * out = sum of inp over `dims` (all when undefined); `keepdim` keeps them with size 1.
 */
export function refSum(inp: RefArray, dims?: RefDims, keepdim = false): RefArray {
  const { outShape, target } = outputMap(inp.shape, dims, keepdim);
  const out = new Float64Array(outShape.reduce((p, d) => p * d, 1));
  for (let i = 0; i < inp.data.length; i++) out[target[i]] += inp.data[i];
  return { shape: outShape, data: out };
}

/**
 * out = mean of inp over `dims`: the sum divided by the number of reduced elements.
 */
export function refMean(inp: RefArray, dims?: RefDims, keepdim = false): RefArray {
  const { outShape, target, count } = outputMap(inp.shape, dims, keepdim);
  const out = new Float64Array(outShape.reduce((p, d) => p * d, 1));
  for (let i = 0; i < inp.data.length; i++) out[target[i]] += inp.data[i];
  for (let o = 0; o < out.length; o++) out[o] /= count;
  return { shape: outShape, data: out };
}

/**
 * Gradient of {@link refSum} (or {@link refMean} with `mean`): dinp[i] = dout[o(i)],
 * times 1/n for the mean, where o(i) is the output element that input i reduces to.
 */
export function refReduceBackward(
  inpShape: readonly number[],
  dims: RefDims,
  keepdim: boolean,
  dout: RefArray,
  mean = false,
): RefArray {
  const { target, count } = outputMap(inpShape, dims, keepdim);
  const dinp = new Float64Array(target.length);
  const scale = mean ? 1 / count : 1;
  for (let i = 0; i < dinp.length; i++) dinp[i] = dout.data[target[i]] * scale;
  return { shape: [...inpShape], data: dinp };
}
