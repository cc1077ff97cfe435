/**
 * Float64 reference for 2-D convolution, as naive loops (llm.c style): the ground truth
 * that both schedules' kernels (`conv2d.wgsl`, `tiled.wgsl`) are tested against. Row-major flat arrays: inp [N, C, H, W],
 * weight [O, C, KH, KW], bias [O], out [N, O, OH, OW].
 *
 * @module
 */

/** Sizes of a convolution: input [n, c, h, w], weight [o, c, kh, kw], stride and padding. */
export interface ConvDims {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  /** Stride along H and W. */
  sh: number;
  sw: number;
  /** Zero padding added on both sides of H and W. */
  ph: number;
  pw: number;
}

/**
 * Output height and width: OH = floor((H + 2 ph - kh) / sh) + 1, likewise OW.
 */
export function refConvOutSize(d: ConvDims): [number, number] {
  return [
    Math.floor((d.h + 2 * d.ph - d.kh) / d.sh) + 1,
    Math.floor((d.w + 2 * d.pw - d.kw) / d.sw) + 1,
  ];
}

/**
 * out[n, o, y, x] = bias[o] + sum_{c, ky, kx} inp[n, c, y sh - ph + ky, x sw - pw + kx]
 * * weight[o, c, ky, kx], with inp read as 0 outside [0, H) x [0, W).
 */
export function refConv2dForward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  d: ConvDims,
): Float64Array {
  const [OH, OW] = refConvOutSize(d);
  const out = new Float64Array(d.n * d.o * OH * OW);
  for (let n = 0; n < d.n; n++) {
    for (let o = 0; o < d.o; o++) {
      for (let y = 0; y < OH; y++) {
        for (let x = 0; x < OW; x++) {
          let s = bias ? bias[o] : 0;
          for (let c = 0; c < d.c; c++) {
            for (let ky = 0; ky < d.kh; ky++) {
              const iy = y * d.sh - d.ph + ky;
              if (iy < 0 || iy >= d.h) continue;
              for (let kx = 0; kx < d.kw; kx++) {
                const ix = x * d.sw - d.pw + kx;
                if (ix < 0 || ix >= d.w) continue;
                s += inp[((n * d.c + c) * d.h + iy) * d.w + ix] *
                  weight[((o * d.c + c) * d.kh + ky) * d.kw + kx];
              }
            }
          }
          out[((n * d.o + o) * OH + y) * OW + x] = s;
        }
      }
    }
  }
  return out;
}

/** Gradients of {@link refConv2dForward}. */
export interface ConvGrads {
  /** dinp [N, C, H, W]: each dout scattered back through the weights. */
  dinp: Float64Array;
  /** dweight [O, C, KH, KW]: dout correlated with the input, summed over N, OH, OW. */
  dweight: Float64Array;
  /** dbias [O] = sum over n, y, x of dout[n, o, y, x]. */
  dbias: Float64Array;
}

/**
 * Backward of {@link refConv2dForward} given dout [N, O, OH, OW]: the forward's loops with each
 * multiply-add turned into its two gradient contributions.
 */
export function refConv2dBackward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  dout: ArrayLike<number>,
  d: ConvDims,
): ConvGrads {
  const [OH, OW] = refConvOutSize(d);
  const dinp = new Float64Array(d.n * d.c * d.h * d.w);
  const dweight = new Float64Array(d.o * d.c * d.kh * d.kw);
  const dbias = new Float64Array(d.o);
  for (let n = 0; n < d.n; n++) {
    for (let o = 0; o < d.o; o++) {
      for (let y = 0; y < OH; y++) {
        for (let x = 0; x < OW; x++) {
          const g = dout[((n * d.o + o) * OH + y) * OW + x];
          dbias[o] += g;
          for (let c = 0; c < d.c; c++) {
            for (let ky = 0; ky < d.kh; ky++) {
              const iy = y * d.sh - d.ph + ky;
              if (iy < 0 || iy >= d.h) continue;
              for (let kx = 0; kx < d.kw; kx++) {
                const ix = x * d.sw - d.pw + kx;
                if (ix < 0 || ix >= d.w) continue;
                const i = ((n * d.c + c) * d.h + iy) * d.w + ix;
                const k = ((o * d.c + c) * d.kh + ky) * d.kw + kx;
                dinp[i] += g * weight[k];
                dweight[k] += g * inp[i];
              }
            }
          }
        }
      }
    }
  }
  return { dinp, dweight, dbias };
}
