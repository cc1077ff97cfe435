/**
 * 2-D convolution on the GPU: `conv2d(inp, weight, bias, { stride, padding })`, PyTorch's
 * `F.conv2d`, with its backward. The kernels (`conv2d.wgsl`) are register-blocked implicit
 * GEMMs: the forward, and the input gradient as the forward on the flipped weight (unit
 * stride); the weight gradient is a split reduction over N*OH*OW plus a small final sum.
 *
 * @module
 */
import { allocBuffer, releaseBuffer } from "../../gpu/buffer_pool.ts";
import { grid, launch, Params } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { record, Tensor } from "../../tensor/tensor.ts";
import { fmt } from "../../tensor/shape.ts";
import src from "./conv2d.wgsl" with { type: "text" };

/**
 * Tiling of the forward (and dinp) kernel. Each thread computes 4 CQ output channels x 4
 * pixels of one output row (CQ = 1 or 2); a workgroup is WG_X threads along pixel quads by
 * WG_Y along channel groups (with fewer channel groups than WG_Y the threads go to pixels,
 * keeping WG_X * WG_Y). The dweight kernel also takes 4 CQ channels per thread. Measured on
 * llvmpipe at the LeNet shapes: CQ = 2 made conv2 forward 2.5x, dinp 3x and dweight 1.9x
 * faster than CQ = 1; the workgroup shape (16x4, 64x1, 8x8, 32x4, 16x16) changed little.
 */
export const TILE = { WG_X: 16, WG_Y: 4, CQ: 2 };
/** Threads per workgroup of the one-dimensional kernels (repacking, dinp, dweight). */
const WG = 64;
/**
 * The weight gradient's reduction over N*OH*OW is split so that about this many threads
 * (tiles x splits) run; each thread then sums ceil(N*OH / splits) output rows. On llvmpipe
 * 512-1024 beat 2048 and 8192 (conv1 dweight 6-11 ms vs 14-18 ms); a large GPU would
 * want more.
 */
export const WEIGHT_THREADS = 1024;
/**
 * Most iterations one loop of one thread may run: Mesa's llvmpipe silently ends a loop
 * after 65535 iterations (counted across re-entries within an invocation).
 */
const MAX_LOOP = 16384;

/** Options of {@link conv2d}: as PyTorch's, a number for both dimensions or [h, w]. */
export interface Conv2dOptions {
  /** Step between windows. Default 1. */
  stride?: number | readonly [number, number];
  /** Zeros added on both sides of H and W. Default 0. */
  padding?: number | readonly [number, number];
}

/** A convolution's sizes: input [n, c, h, w], weight [o, c, kh, kw], output [n, o, oh, ow]. */
interface Dims {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  oh: number;
  ow: number;
}

/**
 * Normalizes a number-or-pair size option to [h, w], checking that both are integers >= min.
 *
 * @example
 * ```ts
 * import { pair } from "./conv2d.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(pair(5, "kernelSize", 1), [5, 5]);
 * assert.deepEqual(pair([3, 2], "stride", 1), [3, 2]);
 * assert.throws(() => pair(0, "stride", 1), /stride must be an integer >= 1/);
 * ```
 */
export function pair(v: number | readonly [number, number], name: string, min: number): [
  number,
  number,
] {
  const [a, b] = typeof v === "number" ? [v, v] : v;
  if (![a, b].every((x) => Number.isInteger(x) && x >= min)) {
    throw new Error(
      `${name} must be an integer >= ${min} or a pair [h, w] of them, got ${JSON.stringify(v)}`,
    );
  }
  return [a, b];
}

interface Extra {
  o4: number;
  total: number;
  splits?: number;
  rows?: number;
  tiles?: number;
  kxb?: number;
}

function params(d: Dims, e: Extra): Params {
  return new Params()
    .u32(d.n).u32(d.c).u32(d.h).u32(d.w)
    .u32(d.o).u32(d.oh).u32(d.ow).u32(d.kh)
    .u32(d.kw).u32(d.sh).u32(d.sw).u32(e.o4)
    .i32(d.ph).i32(d.pw).u32(Math.ceil(d.ow / 4)).u32(e.total)
    .u32(e.splits ?? 0).u32(e.rows ?? 0).u32(e.tiles ?? 0).u32(e.kxb ?? 0);
}

const round4 = (x: number) => Math.ceil(x / 4) * 4;
/**
 * Channel quads per thread for `channels` output channels (one quad when there are at most
 * 4, so that 1-channel outputs waste 3 lanes, not 7) and the channel count of the
 * repacked weight rows: a whole number of thread tiles.
 */
function channelTile(channels: number): { cq: number; o4: number } {
  const cq = channels <= 4 ? 1 : TILE.CQ;
  return { cq, o4: Math.ceil(channels / (4 * cq)) * 4 * cq };
}

/** Specialisation constants shared by the kernels that read inp rows and out/dout rows. */
function layoutOverrides(d: Dims) {
  const unit = d.sh === 1 && d.sw === 1;
  return {
    UNIT_STRIDE: unit ? 1 : 0,
    ALIGNED: unit && d.w % 4 === 0 && d.pw % 4 === 0 ? 1 : 0,
    OUT_ALIGNED: d.ow % 4 === 0 ? 1 : 0,
  };
}

/** Repacks `weight` (entry "pack_weight" or "pack_weight_flipped"); returns the new buffer. */
function packWeight(entry: string, d: Dims, weight: GPUBuffer, k: number, o4: number): GPUBuffer {
  const total = k * o4;
  const wpack = allocBuffer(4 * Math.max(total, 1), "conv2d wpack");
  launch({
    label: `conv2d.${entry}`,
    code: src,
    entryPoint: entry,
    overrides: { WG },
    bindings: [params(d, { o4, total }), weight, wpack],
    workgroups: grid(Math.ceil(total / WG)),
  });
  return wpack;
}

/** Launches the forward kernel for `d`, reading the repacked weight (row length o4). */
function forwardKernel(
  d: Dims,
  inp: GPUBuffer,
  wpack: GPUBuffer,
  o4: number,
  cq: number,
  bias: GPUBuffer | null,
  out: GPUBuffer,
): void {
  const quads = d.n * d.oh * Math.ceil(d.ow / 4);
  const oq = o4 / (4 * cq);
  const wgY = Math.min(TILE.WG_Y, 2 ** Math.ceil(Math.log2(Math.max(oq, 1))));
  const wgX = (TILE.WG_X * TILE.WG_Y) / wgY;
  const [gx, gy] = grid(Math.ceil(quads / wgX));
  launch({
    label: "conv2d.forward",
    code: src,
    entryPoint: "forward",
    overrides: {
      WG_X: wgX,
      WG_Y: wgY,
      CQ: cq,
      HAS_BIAS: bias ? 1 : 0,
      KH: d.kh,
      KW: d.kw,
      ...layoutOverrides(d),
    },
    bindings: [params(d, { o4, total: quads }), inp, wpack, out, bias ?? placeholder(0)],
    workgroups: [gx, gy, Math.ceil(oq / wgY)],
  });
}

/** dweight [O, C, KH, KW] and dbias [O] (when `dbias` is given) from inp and dout. */
function weightGrad(
  d: Dims,
  inp: GPUBuffer,
  dout: GPUBuffer,
  dweight: GPUBuffer,
  dbias: GPUBuffer | null,
): void {
  const kxb = Math.ceil(d.kw / 4);
  const { cq } = channelTile(d.o);
  const tiles = Math.ceil(d.o / (4 * cq)) * d.c * d.kh * kxb;
  const rowsTotal = d.n * d.oh;
  const want = Math.max(1, Math.min(rowsTotal, Math.ceil(WEIGHT_THREADS / tiles)));
  // llvmpipe stops any loop after 65535 iterations (silently): keep each thread's pixel
  // loop (rows * ceil(OW / 4) iterations) well below that.
  const maxRows = Math.max(1, Math.floor(MAX_LOOP / Math.ceil(d.ow / 4)));
  const rows = Math.max(1, Math.min(maxRows, Math.ceil(rowsTotal / want)));
  const splits = Math.max(1, Math.ceil(rowsTotal / rows));
  const kk = d.c * d.kh * d.kw;
  const part = allocBuffer(4 * Math.max(splits * d.o * kk, 1), "conv2d dweight partial");
  const partb = allocBuffer(4 * Math.max(splits * d.o, 1), "conv2d dbias partial");
  const overrides = { WG, CQ: cq, HAS_BIAS: dbias ? 1 : 0, ...layoutOverrides(d) };
  const total = tiles * splits;
  launch({
    label: "conv2d.backward_weight",
    code: src,
    entryPoint: "backward_weight",
    overrides,
    bindings: [
      params(d, { o4: round4(d.o), total, splits, rows, tiles, kxb }),
      inp,
      dout,
      part,
      partb,
    ],
    workgroups: grid(Math.ceil(total / WG)),
  });
  const total2 = d.o * kk + d.o;
  launch({
    label: "conv2d.reduce_weight",
    code: src,
    entryPoint: "reduce_weight",
    overrides: { WG, HAS_BIAS: dbias ? 1 : 0 },
    bindings: [
      params(d, { o4: round4(d.o), total: total2, splits }),
      part,
      partb,
      dweight,
      dbias ?? placeholder(1),
    ],
    workgroups: grid(Math.ceil(total2 / WG)),
  });
  releaseBuffer(part);
  releaseBuffer(partb);
}

/** dinp [N, C, H, W] from dout and the weight. */
function inputGrad(d: Dims, dout: GPUBuffer, weight: GPUBuffer, dinp: GPUBuffer): void {
  if (d.sh === 1 && d.sw === 1) {
    // Unit stride: dinp = dout correlated with the flipped, transposed weight, padded by
    // K-1-P, which gives back exactly H x W (OH + 2(KH-1-PH) - KH + 1 = H).
    const t: Dims = {
      n: d.n,
      c: d.o,
      h: d.oh,
      w: d.ow,
      o: d.c,
      kh: d.kh,
      kw: d.kw,
      sh: 1,
      sw: 1,
      ph: d.kh - 1 - d.ph,
      pw: d.kw - 1 - d.pw,
      oh: d.h,
      ow: d.w,
    };
    const { cq, o4 } = channelTile(d.c);
    const wpack = packWeight("pack_weight_flipped", d, weight, d.o * d.kh * d.kw, o4);
    forwardKernel(t, dout, wpack, o4, cq, null, dinp);
    releaseBuffer(wpack);
    return;
  }
  const total = d.n * d.c * d.h * d.w;
  launch({
    label: "conv2d.backward_inp",
    code: src,
    entryPoint: "backward_inp",
    overrides: { WG },
    bindings: [params(d, { o4: round4(d.o), total }), dout, weight, dinp],
    workgroups: grid(Math.ceil(total / WG)),
  });
}

/**
 * 2-D convolution (cross-correlation) of a batch of images with a bank of filters, as
 * PyTorch's `F.conv2d(input, weight, bias, stride, padding)`:
 *
 *     out[n, o, y, x] = bias[o] + sum_{c, ky, kx} inp[n, c, y sh - ph + ky, x sw - pw + kx]
 *                                                 * weight[o, c, ky, kx]
 *
 * with the input zero-padded by (ph, pw) on each side. Differentiable in all three
 * arguments (bias may be null).
 *
 * Shape: inp [N, C, H, W], weight [O, C, KH, KW], bias [O] -> [N, O, OH, OW] with
 * OH = floor((H + 2 ph - KH) / sh) + 1 and OW = floor((W + 2 pw - KW) / sw) + 1.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../../mod.ts";
 * import { conv2d } from "./conv2d.ts";
 * import assert from "node:assert/strict";
 * const x = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
 * const w = Tensor.ones([1, 1, 2, 2]); // sums each 2x2 window
 * const y = conv2d(x, w, Tensor.from([0.5]));
 * assert.deepEqual(y.shape, [1, 1, 2, 2]);
 * assert.deepEqual(Array.from(await y.toArray()), [12.5, 16.5, 24.5, 28.5]);
 * // stride 2, padding 1: windows at -1 and 1 of the padded 5x5 input
 * assert.deepEqual(conv2d(x, w, null, { stride: 2, padding: 1 }).shape, [1, 1, 2, 2]);
 * ```
 */
export function conv2d(
  inp: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: Conv2dOptions = {},
): Tensor {
  const [sh, sw] = pair(opts.stride ?? 1, "conv2d: stride", 1);
  const [ph, pw] = pair(opts.padding ?? 0, "conv2d: padding", 0);
  if (weight.rank !== 4) {
    throw new Error(
      `conv2d expects a 4-D weight [out_channels, in_channels, kH, kW], got ${fmt(weight.shape)}`,
    );
  }
  const [o, c, kh, kw] = weight.shape;
  if (inp.rank !== 4 || inp.shape[1] !== c) {
    throw new Error(
      `conv2d expects input [N, ${c}, H, W] to match weight ${fmt(weight.shape)}, got ${
        fmt(inp.shape)
      }`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== o)) {
    throw new Error(`conv2d expects bias [${o}] (one per output channel), got ${fmt(bias.shape)}`);
  }
  const [n, , h, w] = inp.shape;
  if (h + 2 * ph < kh || w + 2 * pw < kw) {
    throw new Error(
      `conv2d: kernel ${kh}x${kw} is larger than the padded input ${h + 2 * ph}x${w + 2 * pw} ` +
        `(input ${h}x${w}, padding [${ph}, ${pw}]); use a smaller kernel or more padding`,
    );
  }
  const d: Dims = {
    n,
    c,
    h,
    w,
    o,
    kh,
    kw,
    sh,
    sw,
    ph,
    pw,
    oh: Math.floor((h + 2 * ph - kh) / sh) + 1,
    ow: Math.floor((w + 2 * pw - kw) / sw) + 1,
  };
  const out = Tensor.empty([n, o, d.oh, d.ow]);
  const { cq, o4 } = channelTile(o);
  const wpack = packWeight("pack_weight", d, weight.buffer, c * kh * kw, o4);
  forwardKernel(d, inp.buffer, wpack, o4, cq, bias?.buffer ?? null, out.buffer);
  releaseBuffer(wpack);
  const parents = bias ? [inp, weight, bias] : [inp, weight];
  return record(out, "conv2d", parents, (dout) => {
    let dinp: Tensor | null = null;
    if (inp.requiresGrad) {
      dinp = Tensor.empty(inp.shape);
      inputGrad(d, dout.buffer, weight.buffer, dinp.buffer);
    }
    let dweight: Tensor | null = null;
    let dbias: Tensor | null = null;
    if (weight.requiresGrad || bias?.requiresGrad) {
      dweight = Tensor.empty(weight.shape);
      dbias = bias ? Tensor.empty([o]) : null;
      weightGrad(d, inp.buffer, dout.buffer, dweight.buffer, dbias?.buffer ?? null);
    }
    return [dinp, dweight, dbias];
  });
}
