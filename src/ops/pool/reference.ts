/**
 * Float64 reference for 2-D max and average pooling, as naive loops: the ground truth that
 * `pool.wgsl` is tested against. Row-major flat arrays: inp [N, C, H, W], out
 * [N, C, OH, OW] with OH = floor((H + 2 ph - kh) / sh) + 1 (likewise OW).
 *
 * @module
 */

/** Sizes of a pooling: input [n, c, h, w], window kh x kw, stride and padding. */
export interface PoolDims {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

/**
 * Output height and width: OH = floor((H + 2 ph - kh) / sh) + 1, likewise OW.
 */
export function refPoolOutSize(d: PoolDims): [number, number] {
  return [
    Math.floor((d.h + 2 * d.ph - d.kh) / d.sh) + 1,
    Math.floor((d.w + 2 * d.pw - d.kw) / d.sw) + 1,
  ];
}

/** Result of {@link refMaxPool2dForward}. */
export interface MaxPoolResult {
  /** out[n, c, y, x] = max over the window (padding never wins). */
  out: Float64Array;
  /** Position iy * W + ix of the maximum in its input plane (PyTorch's `indices`). */
  indices: Int32Array;
}

/**
 * out[n, c, y, x] = max_{ky, kx} inp[n, c, y sh - ph + ky, x sw - pw + kx] over the window
 * positions inside the input. Ties go to the first maximum in row-major window order, and
 * a NaN wins, as in PyTorch.
 */
export function refMaxPool2dForward(inp: ArrayLike<number>, d: PoolDims): MaxPoolResult {
  const [OH, OW] = refPoolOutSize(d);
  const out = new Float64Array(d.n * d.c * OH * OW);
  const indices = new Int32Array(out.length);
  for (let nc = 0; nc < d.n * d.c; nc++) {
    for (let y = 0; y < OH; y++) {
      for (let x = 0; x < OW; x++) {
        let best = -Infinity, arg = -1;
        for (let ky = 0; ky < d.kh; ky++) {
          const iy = y * d.sh - d.ph + ky;
          if (iy < 0 || iy >= d.h) continue;
          for (let kx = 0; kx < d.kw; kx++) {
            const ix = x * d.sw - d.pw + kx;
            if (ix < 0 || ix >= d.w) continue;
            const v = inp[nc * d.h * d.w + iy * d.w + ix];
            if (arg < 0 || v > best || Number.isNaN(v)) {
              best = v;
              arg = iy * d.w + ix;
            }
          }
        }
        out[(nc * OH + y) * OW + x] = best;
        indices[(nc * OH + y) * OW + x] = arg;
      }
    }
  }
  return { out, indices };
}

/**
 * Backward of {@link refMaxPool2dForward}: each dout goes to the input position that won its
 * window (summed where windows overlap). dinp [N, C, H, W].
 */
export function refMaxPool2dBackward(
  indices: ArrayLike<number>,
  dout: ArrayLike<number>,
  d: PoolDims,
): Float64Array {
  const [OH, OW] = refPoolOutSize(d);
  const dinp = new Float64Array(d.n * d.c * d.h * d.w);
  for (let nc = 0; nc < d.n * d.c; nc++) {
    for (let i = 0; i < OH * OW; i++) {
      dinp[nc * d.h * d.w + indices[nc * OH * OW + i]] += dout[nc * OH * OW + i];
    }
  }
  return dinp;
}

/**
 * out[n, c, y, x] = (1 / (kh kw)) sum_{ky, kx} inp[n, c, y sh - ph + ky, x sw - pw + kx],
 * padding counted as zeros in the divisor (PyTorch's default `count_include_pad=True`).
 */
export function refAvgPool2dForward(inp: ArrayLike<number>, d: PoolDims): Float64Array {
  const [OH, OW] = refPoolOutSize(d);
  const out = new Float64Array(d.n * d.c * OH * OW);
  for (let nc = 0; nc < d.n * d.c; nc++) {
    for (let y = 0; y < OH; y++) {
      for (let x = 0; x < OW; x++) {
        let s = 0;
        for (let ky = 0; ky < d.kh; ky++) {
          const iy = y * d.sh - d.ph + ky;
          if (iy < 0 || iy >= d.h) continue;
          for (let kx = 0; kx < d.kw; kx++) {
            const ix = x * d.sw - d.pw + kx;
            if (ix < 0 || ix >= d.w) continue;
            s += inp[nc * d.h * d.w + iy * d.w + ix];
          }
        }
        out[(nc * OH + y) * OW + x] = s / (d.kh * d.kw);
      }
    }
  }
  return out;
}

/**
 * Backward of {@link refAvgPool2dForward}: each dout / (kh kw) goes to every input position
 * of its window. dinp [N, C, H, W].
 */
export function refAvgPool2dBackward(dout: ArrayLike<number>, d: PoolDims): Float64Array {
  const [OH, OW] = refPoolOutSize(d);
  const dinp = new Float64Array(d.n * d.c * d.h * d.w);
  for (let nc = 0; nc < d.n * d.c; nc++) {
    for (let y = 0; y < OH; y++) {
      for (let x = 0; x < OW; x++) {
        const g = dout[(nc * OH + y) * OW + x] / (d.kh * d.kw);
        for (let ky = 0; ky < d.kh; ky++) {
          const iy = y * d.sh - d.ph + ky;
          if (iy < 0 || iy >= d.h) continue;
          for (let kx = 0; kx < d.kw; kx++) {
            const ix = x * d.sw - d.pw + kx;
            if (ix < 0 || ix >= d.w) continue;
            dinp[nc * d.h * d.w + iy * d.w + ix] += g;
          }
        }
      }
    }
  }
  return dinp;
}
