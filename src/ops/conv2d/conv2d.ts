/**
 * 2-D convolution on the GPU: `conv2d(inp, weight, bias, { stride, padding })`, PyTorch's
 * `F.conv2d`, with its backward. The kernels (`conv2d.wgsl`) are register-blocked implicit
 * GEMMs: the forward, and the input gradient as the forward on the flipped weight (unit
 * stride); the weight gradient is a split reduction over N*OH*OW plus a small final sum.
 *
 * @module
 */
import { allocBuffer, releaseBuffer } from "../../gpu/buffer_pool.ts";
import { deviceSync } from "../../gpu/device.ts";
import { grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { UNIFORM_SCRATCH_FLOATS, uniformScratch } from "../../gpu/uniform_scratch.ts";
import { record, Tensor } from "../../tensor/tensor.ts";
import { isGradEnabled } from "../../tensor/autograd.ts";
import {
  activationCode,
  type FusedActivation,
  launchActivation,
} from "../activation/activation.ts";
import { fmt } from "../../tensor/shape.ts";
import { pair, slidingWindow, type Window } from "../window.ts";
import src from "./conv2d.wgsl" with { type: "text" };

export { pair };

/**
 * Register tile of the forward (and dinp) kernel: each thread computes `channels` output
 * channels x `pixels` pixels of one output row. The tiles: 4 x 8, 8 x 4, 8 x 8, 8 x 12.
 * Measured on llvmpipe at conv2 of LeNet (same process, interleaved): 4 x 8 with uniform
 * weights about 2x faster than the first 8 x 4 kernel with per-thread weight loads and a
 * pixel-major thread order; 4 x 16 about 3x slower (spilled).
 */
export interface ConvTile {
  /** Output channels per thread: 4 or 8. */
  channels: 4 | 8;
  /** Pixels of an output row per thread: 8 with 4 channels; 4, 8 or 12 with 8. */
  pixels: 4 | 8 | 12;
}

/** Every tile the kernel has, in the order {@link tileCosts} lists their costs. */
export const CONV_TILES: readonly ConvTile[] = [
  { channels: 4, pixels: 8 },
  { channels: 8, pixels: 4 },
  { channels: 8, pixels: 8 },
  { channels: 8, pixels: 12 },
];

/** The tile's channel quads (CQ in conv2d.wgsl), after checking it is one the kernel has. */
function channelQuads(tile: ConvTile): 1 | 2 {
  if (!CONV_TILES.some((t) => t.channels === tile.channels && t.pixels === tile.pixels)) {
    throw new Error(
      `conv2d: no ${tile.channels} x ${tile.pixels} tile (channels x pixels); the kernel ` +
        `has ${CONV_TILES.map((t) => `${t.channels} x ${t.pixels}`).join(", ")}`,
    );
  }
  return tile.channels === 4 ? 1 : 2;
}

/**
 * Time per computed output of each tile of {@link CONV_TILES} relative to 4 x 8, on shapes
 * that are whole tiles of all of them. On llvmpipe (AMD EPYC, 2 cores, 256-bit LLVM 15;
 * interleaved medians of 5-7 rounds): 8 x 4 1.05x, 8 x 8 0.78x at LeNet's conv2 forward
 * ([256,6,12,12] * [16,6,5,5]) and 1.05x, 0.74x at [64,32,16,16] * [64,32,3,3]: more work
 * per thread for the same weight loads and loop overhead. 8 x 12 against 8 x 8 (tiles
 * A/B, medians of 7 rounds): 0.78x at LeNet+BN's conv2 dinp (OW 12: one tile per row
 * against two), 0.72x at plain LeNet's conv2 forward (OW 10), 0.95x at LeNet+BN's conv1
 * forward (OW 24, whole tiles of both), 1.02x at plain LeNet's conv1 forward (OW 28),
 * 0.97x at [64,16,28,28] * [16,16,3,3]: 0.65-0.73 per output, 0.71 taken (after the
 * shared row loads of tap_row, the same run: 0.74x, 0.70x, 0.98x, 1.04x, 0.93x). Since
 * {@link columnPlan} mixes tiles along a row (Intel Xeon, 2 cores; interleaved medians of 7
 * rounds against one tile per row): plain LeNet's conv1 forward as 12 + 8 + 8 pixels 0.91x
 * the time of four blocks of 8, its conv2 dinp as 12 pixels at 5 taps + 4 at 2 0.91x two
 * blocks of 8 at 5 (the model said 0.85x and 0.84x). On a GPU, 64 or 96 accumulators per thread cost
 * occupancy: not measured, so the wide tiles are not used there, and 8 x 4 counts as 4 x 8
 * (the rule before they existed).
 */
function tileCosts(): readonly number[] {
  return deviceSync().adapterInfo.isFallbackAdapter
    ? [1, 1.05, 0.76, 0.71]
    : [1, 1, Infinity, Infinity];
}

/**
 * (input channel, kernel row) sets per weight-gradient tile (CT in conv2d.wgsl): the
 * tile's 4 dout vec4s per pixel quad are loaded once for all of them, and those loads are
 * most of the kernel's. The sets are input channels, or kernel rows when the input has one
 * channel (a first layer). Measured on llvmpipe against 1 set per tile (same process,
 * interleaved, medians): LeNet's conv2 dweight 0.84x the time with 2 channels, 0.63x with
 * 3, plain LeNet's 0.80x and 0.69x; conv1 (C = 1) with 3 kernel rows 0.82x, plain 0.80x.
 * Not measured on a GPU, where more accumulators per thread may cost occupancy.
 */
const WEIGHT_GRAD_CT = 3;
/**
 * Output channel quads per weight-gradient tile (OQ in conv2d.wgsl) for `o` output channels:
 * with 2 (8 channels), each set's input values, 2-3 vec4 loads per pixel quad, feed twice
 * the multiply-adds. Measured on llvmpipe against 1 (AMD EPYC, 2 cores; same process,
 * interleaved, medians of 4 runs of 9-15 rounds): LeNet+BN's conv1 dweight 0.79-0.91x the
 * time, conv2 0.79-0.90x, plain LeNet's 0.86-0.92x and 0.84-1.00x. Only with more than 4
 * channels; a GPU keeps 1 (occupancy with 48 accumulators per thread not measured).
 */
function weightGradQuads(o: number): 1 | 2 {
  return o > 4 && deviceSync().adapterInfo.isFallbackAdapter ? 2 : 1;
}
/** Threads per workgroup of every kernel (the forward's are WG x 1 x 1). */
const WG = 64;
/**
 * The weight gradient's reduction over N*OH*OW is split so that about this many threads
 * (tiles x lanes) run. On llvmpipe (2 cores) about 1024 beat more splits; a GPU wants
 * enough to fill its cores.
 */
function weightThreads(): number {
  return deviceSync().adapterInfo.isFallbackAdapter ? 1024 : 65536;
}
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
  /**
   * An activation applied to the output in the same kernel (`"sigmoid"` or `"relu"`), as
   * `conv2d(...).sigmoid()` with one pass and one tensor fewer. `nn.Sequential` uses it for
   * a Conv2d followed by a Sigmoid or ReLU module.
   */
  activation?: FusedActivation;
}

/** A convolution's sizes: the window over input [n, c, h, w] and o output channels. */
interface Dims extends Window {
  o: number;
}

interface Extra {
  o4: number;
  total: number;
  qw?: number;
  splits?: number;
  rows?: number;
  tiles?: number;
  kxb?: number;
  wp?: number;
  pl?: number;
  lanes?: number;
  dwp?: number;
  xb0?: number;
  dxo?: number;
}

function params(d: Dims, e: Extra): Uniforms {
  const { n, c, h, w, o, oh, ow, kh, kw, sh, sw, ph, pw } = d;
  return uniforms({
    n,
    c,
    h,
    w,
    o,
    oh,
    ow,
    kh,
    kw,
    sh,
    sw,
    ph,
    pw,
    o4: e.o4,
    qw: e.qw ?? Math.ceil(ow / 4),
    total: e.total,
    splits: e.splits ?? 0,
    rows: e.rows ?? 0,
    tiles: e.tiles ?? 0,
    kxb: e.kxb ?? 0,
    wp: e.wp ?? w,
    pl: e.pl ?? 0,
    lanes: e.lanes ?? 0,
    dwp: e.dwp ?? 0,
    xb0: e.xb0 ?? 0,
    dxo: e.dxo ?? 0,
  });
}

const round4 = (x: number) => Math.ceil(x / 4) * 4;

/**
 * A tensor's rows as the kernels read them: [N, C, H, WP], WP a multiple of 4, each row's
 * values from column `at` and zeros around them; `buffer` is the tensor's own when it
 * needs no padding.
 */
export interface ConvRows {
  /** The rows, or the tensor's own buffer when it needs no padding. */
  buffer: GPUBuffer;
  /** Floats per row, a multiple of 4. */
  wp: number;
  /** The column where each row's values start (the left padding). */
  at: number;
}

/**
 * The input rows as the kernels read them: each row zero-padded by PW on the left and right
 * and WP a multiple of 4 (so that, with unit stride, the window of pixels x0.. at tap kx0
 * starts on a vec4 boundary). The input itself when it needs no padding, else written into
 * `into` (a buffer of N C H WP floats, which {@link rowLength} gives) or a new buffer (released
 * by the caller).
 */
function paddedRows(d: Dims, inp: GPUBuffer, into?: GPUBuffer): ConvRows {
  const wp = rowLength(d);
  if (wp === null) return { buffer: inp, wp: d.w, at: 0 };
  const total = d.n * d.c * d.h; // a thread per row
  const rows = into ?? allocBuffer(4 * total * wp, "conv2d padded rows");
  launch({
    label: "conv2d.pad_rows",
    code: src,
    entryPoint: d.w % 4 === 0 && d.pw % 4 === 0 ? "pad_rows" : "pad_rows_scalar",
    overrides: { WG },
    bindings: [params(d, { o4: 0, total, wp, pl: d.pw }), inp, rows],
    workgroups: grid(Math.ceil(total / WG)),
  });
  return { buffer: rows, wp, at: d.pw };
}

/** The padded row length the kernels read the input of `d` with, or null: read as it is. */
function rowLength(d: Dims): number | null {
  const unit = d.sh === 1 && d.sw === 1;
  if (d.pw === 0 && (!unit || d.w % 4 === 0)) return null;
  return round4(d.w + 2 * d.pw);
}

/**
 * Repacks `weight` (entry "pack_weight" or "pack_weight_flipped") into rows of `o4`
 * channels: into uniform scratch buffer 0 when it fits (safe to reuse call after call:
 * the queue runs every pack before the next one), else into a new storage buffer.
 */
function packWeight(
  entry: string,
  d: Dims,
  weight: GPUBuffer,
  k: number,
  o4: number,
  ssbo = false,
): { wpack: GPUBuffer; uniform: boolean } {
  const total = k * o4;
  const uniform = !ssbo && total <= UNIFORM_SCRATCH_FLOATS;
  const wpack = uniform ? uniformScratch() : allocBuffer(4 * total, "conv2d wpack");
  launch({
    label: `conv2d.${entry}`,
    code: src,
    entryPoint: entry,
    overrides: { WG },
    bindings: [params(d, { o4, total }), weight, wpack],
    workgroups: grid(Math.ceil(total / WG)),
  });
  return { wpack, uniform };
}

/**
 * A run of pixel blocks along every output row, one dispatch of the forward: `blocks`
 * blocks of `tile.pixels` pixels from pixel `x0`, whose taps in [kxLo, kxHi) read real input
 * values (the others only the row's zero padding, and are skipped).
 */
export interface ColumnRun {
  /** The register tile of every block of the run. */
  tile: ConvTile;
  /** The first pixel of the run's first block, in every output row. */
  x0: number;
  /** Blocks of `tile.pixels` pixels, one after the other. */
  blocks: number;
  /** The taps [kxLo, kxHi) the blocks compute (0xffffffff: every tap). */
  kxLo: number;
  kxHi: number;
}

/** Every tap: with a stride, or KW > 8, blocks do not skip the padding's taps. */
const ALL_TAPS = { kxLo: 0, kxHi: 0xffffffff };

/**
 * The taps of a block of `tw` pixels from pixel x0 that read real input values, [kxLo,
 * kxHi) (kxHi 0: all padding). Pixels x0 .. read padded values x0 + kx ..; the real ones are
 * [pw, pw + w). With unit stride and KW <= 8 (the written-out tap blocks), else every tap.
 */
function blockTaps(d: Dims, x0: number, tw: number): { kxLo: number; kxHi: number } {
  if (d.sh !== 1 || d.sw !== 1 || d.kw > 8) return ALL_TAPS;
  return {
    kxLo: Math.max(0, d.pw - x0 - tw + 1),
    kxHi: Math.max(0, Math.min(d.kw, d.pw + d.w - x0)),
  };
}

/**
 * How the forward covers an output row: runs of pixel blocks, each of one tile, that
 * together cost least by {@link tileCosts}. A block costs its tile's cost per output, times
 * its pixels (those past the row included), times the taps it computes (those that read
 * only padding are skipped), over the share of its channel blocks that exist (O rounded
 * up to 4 or 8, except in a single block of channels, where TAIL skips the absent ones).
 * So the row may mix widths: plain LeNet's conv2 dinp (14 pixels, padding 4 around its 10x10
 * dout maps) as 12 pixels at 5 taps and 4 at 2, where two blocks of 8 computed 16 at 5
 * taps; its conv1 (28 pixels) as 12 + 8 + 8. Tiles of one run share a channel count (one
 * packed weight); ties go to the earlier tile of {@link CONV_TILES}. With `tile`, every
 * block is that tile (tests force each).
 */
export function columnPlan(d: Dims, tile?: ConvTile): ColumnRun[] {
  const costs = tileCosts();
  const choices = tile
    ? [{ tile, cost: 1 }]
    : CONV_TILES.map((t, i) => ({ tile: t, cost: costs[i] }))
      .filter((c) => Number.isFinite(c.cost));
  let best: { cost: number; runs: ColumnRun[] } | null = null;
  for (const channels of [4, 8]) {
    const group = choices.filter((c) => c.tile.channels === channels);
    if (group.length === 0) continue;
    const used = d.o <= channels ? 1 : d.o / (Math.ceil(d.o / channels) * channels);
    // least[x]: the least cost of pixels x .. OW - 1 (x a multiple of 4), pick[x] its block
    const end = Math.ceil(d.ow / 4) * 4;
    const least = new Array<number>(end + 1).fill(0);
    const pick = new Array<ConvTile>(end);
    for (let x = end - 4; x >= 0; x -= 4) {
      least[x] = Infinity;
      for (const { tile: t, cost } of group) {
        const { kxLo, kxHi } = blockTaps(d, x, t.pixels);
        // a block whose taps all read padding still stores its zeros: a tenth of a tap
        const taps = Math.max(Math.min(kxHi, d.kw) - kxLo, 0.1);
        const c = (cost * t.pixels * taps) / used + least[Math.min(x + t.pixels, end)];
        if (c < least[x]) {
          least[x] = c;
          pick[x] = t;
        }
      }
    }
    if (best && least[0] >= best.cost) continue;
    const runs: ColumnRun[] = [];
    for (let x = 0; x < d.ow; x += pick[x].pixels) {
      const t = pick[x];
      const taps = blockTaps(d, x, t.pixels);
      const last = runs.at(-1);
      if (last && last.tile === t && last.kxLo === taps.kxLo && last.kxHi === taps.kxHi) {
        last.blocks++;
      } else runs.push({ tile: t, x0: x, blocks: 1, ...taps });
    }
    best = { cost: least[0], runs };
  }
  return best!.runs;
}

/**
 * out [N, O, OH, OW] = the convolution of `inp` with `weight` (+ bias), or, with
 * `flipped`, of dout with the weight flipped and transposed (dinp of a unit-stride
 * convolution, whose dims `d` are then those of that correlation). `rows`: the input's rows
 * already padded as `paddedRows(d, inp)` gives them (the caller keeps them); `tile` forces
 * every run's tile.
 */
export function launchConvForward(
  d: Dims,
  inp: GPUBuffer,
  weight: GPUBuffer,
  bias: GPUBuffer | null,
  out: GPUBuffer,
  opts: {
    flipped?: Dims;
    tile?: ConvTile;
    ssbo?: boolean;
    entry?: string;
    activation?: FusedActivation;
    rows?: ConvRows;
  } = {},
): void {
  if (opts.tile) channelQuads(opts.tile); // refuses a tile the kernel lacks
  const runs = columnPlan(d, opts.tile);
  const cq = channelQuads(runs[0].tile); // every run's: one packed weight
  const o4 = Math.ceil(d.o / (4 * cq)) * 4 * cq;
  const { wpack, uniform } = opts.flipped
    ? packWeight("pack_weight_flipped", opts.flipped, weight, d.c * d.kh * d.kw, o4, opts.ssbo)
    : packWeight("pack_weight", d, weight, d.c * d.kh * d.kw, o4, opts.ssbo);
  const rows = opts.rows ?? paddedRows(d, inp);
  for (const run of runs) {
    const qw = run.blocks;
    const blocks = d.oh * qw; // pixel blocks per image
    launch({
      label: "conv2d.forward",
      code: src,
      entryPoint: opts.entry ?? "forward",
      overrides: {
        WG,
        CQ: cq,
        TW: run.tile.pixels,
        // one block of channels: those that exist (the FMAs of absent ones are skipped)
        TAIL: o4 === 4 * cq ? d.o : 4 * cq,
        W_UNIFORM: +uniform,
        HAS_BIAS: +(bias !== null),
        KH: d.kh,
        KW: d.kw,
        ACT: activationCode("conv2d", opts.activation),
        KX_LO: run.kxLo,
        KX_HI: run.kxHi,
        UNIT_STRIDE: +(d.sh === 1 && d.sw === 1),
        OUT_ALIGNED: +(d.ow % 4 === 0),
      },
      bindings: [
        params(d, { o4, total: d.n, qw, wp: rows.wp, xb0: run.x0 }),
        rows.buffer,
        uniform ? wpack : uniformScratch(),
        out,
        bias ?? placeholder(0),
        uniform ? placeholder(1) : wpack,
      ],
      workgroups: [
        Math.ceil(d.n / WG),
        Math.min(blocks, 65535),
        (o4 / (4 * cq)) * Math.ceil(blocks / 65535),
      ],
    });
  }
  if (!uniform) releaseBuffer(wpack);
  if (!opts.rows && rows.buffer !== inp) releaseBuffer(rows.buffer);
}

/**
 * dweight [O, C, KH, KW] and dbias [O] (when `dbias` is given) from inp and dout. `quads`
 * (output channel quads per tile, 1 or 2; 2 with unit stride only) defaults to the
 * adapter's choice; tests force each. `rows`: the input's rows as the forward padded them
 * (kept by conv2d, so that they are padded once); `doutRows`: dout's rows padded by
 * another pass (dinp's), used when its values start on a vec4 (else dout is padded here).
 */
export function launchConvWeightGrad(
  d: Dims,
  inp: GPUBuffer,
  dout: GPUBuffer,
  dweight: GPUBuffer,
  dbias: GPUBuffer | null,
  opts: { quads?: 1 | 2; rows?: ConvRows; doutRows?: ConvRows } = {},
): void {
  const { quads } = opts;
  // A workgroup per tile (4 OQ output channels, CT (c, ky) sets, 8 taps), group of WG images
  // and range of output rows; each lane sums its images' rows into its own partial.
  const kxb = Math.ceil(d.kw / 8);
  const unit = d.sh === 1 && d.sw === 1;
  // sets of (c, ky) per tile: input channels, or kernel rows when there is one channel
  const ct = unit ? WEIGHT_GRAD_CT : 1;
  if (quads === 2 && !unit) {
    throw new Error(
      `conv2d: weight-gradient tiles of 8 channels (quads 2) need unit stride, got ` +
        `[${d.sh}, ${d.sw}]; pass 1 or leave it to the default`,
    );
  }
  const oq = unit ? quads ?? weightGradQuads(d.o) : 1;
  const alongKy = d.c === 1;
  const sets = alongKy ? Math.ceil(d.kh / ct) : Math.ceil(d.c / ct) * d.kh;
  const tiles = Math.ceil(d.o / (4 * oq)) * sets * kxb;
  const groups = Math.max(
    1,
    Math.min(Math.ceil(weightThreads() / (tiles * WG)), Math.ceil(d.n / WG)),
  );
  const lanes = groups * WG;
  // llvmpipe stops any loop after 65535 iterations (silently): keep each lane's pixel loop
  // (its images x rows x ceil(OW / 4) iterations) well below that.
  const perRow = Math.ceil(d.n / lanes) * Math.ceil(d.ow / 4);
  const rows = Math.max(1, Math.min(d.oh, Math.floor(MAX_LOOP / perRow)));
  const ranges = Math.ceil(d.oh / rows);
  const splits = ranges * lanes;
  const kk = d.c * d.kh * d.kw;
  const part = allocBuffer(4 * Math.max(splits * d.o * kk, 1), "conv2d dweight partial");
  const partb = allocBuffer(4 * Math.max(splits * d.o, 1), "conv2d dbias partial");
  const overrides = {
    WG,
    HAS_BIAS: +(dbias !== null),
    UNIT_STRIDE: +unit,
    CT: ct,
    OQ: oq,
    ALONG_KY: +alongKy,
    FULL_SETS: +((alongKy ? d.kh : d.c) % ct === 0),
    // one tile of channels: those that exist (the multiply-adds of absent ones are skipped)
    W_TAIL: Math.min(d.o, 4 * oq),
    KW: d.kw <= 8 ? d.kw : 0,
  };
  const padded = opts.rows ?? paddedRows(d, inp);
  // dout's rows padded to a multiple of 4 (when OW is not): every pixel quad is one load
  const doutDims = { ...d, c: d.o, h: d.oh, w: d.ow, sh: 1, sw: 1, ph: 0, pw: 0 };
  // another pass's padded rows serve when each row's values start on a vec4 and zeros
  // follow them up to the next multiple of 4
  const given = opts.doutRows;
  const doutRows = given && given.at % 4 === 0 && given.wp >= given.at + round4(d.ow)
    ? given
    : paddedRows(doutDims, dout);
  launch({
    label: "conv2d.backward_weight",
    code: src,
    entryPoint: "backward_weight",
    overrides,
    bindings: [
      params(d, {
        o4: round4(d.o),
        total: tiles,
        splits,
        rows,
        tiles,
        kxb,
        wp: padded.wp,
        lanes,
        dwp: doutRows.wp,
        dxo: doutRows.at,
      }),
      padded.buffer,
      doutRows.buffer,
      part,
      partb,
    ],
    workgroups: [...grid(tiles), ranges * groups],
  });
  if (padded !== opts.rows && padded.buffer !== inp) releaseBuffer(padded.buffer);
  if (doutRows !== opts.doutRows && doutRows.buffer !== dout) releaseBuffer(doutRows.buffer);
  const total2 = d.o * kk + d.o;
  launch({
    label: "conv2d.reduce_weight",
    code: src,
    entryPoint: "reduce_weight",
    overrides: { WG, HAS_BIAS: +(dbias !== null) },
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

/**
 * The dims of dinp as a forward convolution (unit stride): dout correlated with the flipped,
 * transposed weight, padded by K-1-P, which gives back exactly H x W (OH + 2(KH-1-PH) -
 * KH + 1 = H).
 */
function inputGradDims(d: Dims): Dims {
  return {
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
}

/**
 * dinp [N, C, H, W] from dout and the weight. `doutRows`: dout's rows as
 * `paddedRows(inputGradDims(d), dout)` gives them (conv2d pads them once for both
 * gradients).
 */
export function launchConvInputGrad(
  d: Dims,
  dout: GPUBuffer,
  weight: GPUBuffer,
  dinp: GPUBuffer,
  opts: { tile?: ConvTile; doutRows?: ConvRows } = {},
): void {
  if (d.sh === 1 && d.sw === 1) {
    launchConvForward(inputGradDims(d), dout, weight, null, dinp, {
      flipped: d,
      tile: opts.tile,
      rows: opts.doutRows,
    });
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
  const stride = pair(opts.stride ?? 1, "conv2d: stride", 1);
  const padding = pair(opts.padding ?? 0, "conv2d: padding", 0);
  const { activation } = opts;
  activationCode("conv2d", activation); // refuses an unknown one before any work
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
  const d: Dims = { ...slidingWindow("conv2d", inp.shape, [kh, kw], stride, padding), o };
  const out = Tensor.empty([d.n, o, d.oh, d.ow]);
  // The weight gradient (with dbias) runs in backward when either needs a gradient.
  const grads = weight.requiresGrad || (bias?.requiresGrad ?? false);
  // The input's padded rows, when it needs them and the weight gradient will read them
  // again: kept (a saved tensor) so that they are padded once, not in both passes.
  const wp = rowLength(d);
  const kept = wp !== null && grads && isGradEnabled() ? Tensor.empty([d.n, d.c, d.h, wp]) : null;
  const rows = kept ? paddedRows(d, inp.buffer, kept.buffer) : undefined;
  launchConvForward(d, inp.buffer, weight.buffer, bias?.buffer ?? null, out.buffer, {
    activation,
    rows,
  });
  const parents = bias ? [inp, weight, bias] : [inp, weight];
  const op = activation ? `conv2d+${activation}` : "conv2d";
  record(out, op, parents, (g) => {
    // through the activation first, from its saved output (y > 0 iff x > 0 for ReLU)
    let dout = g;
    if (activation) {
      dout = Tensor.empty(out.shape);
      const entry = activation === "sigmoid" ? "sigmoid_backward" : "relu_backward";
      launchActivation(entry, [out.buffer, g.buffer, dout.buffer], out.numel);
    }
    let dinp: Tensor | null = null;
    // dout's rows padded once for dinp (unit stride), and read by the weight gradient too
    let doutRows: ConvRows | undefined;
    if (inp.requiresGrad) {
      dinp = Tensor.empty(inp.shape);
      const unit = d.sh === 1 && d.sw === 1;
      if (unit && grads) doutRows = paddedRows(inputGradDims(d), dout.buffer);
      launchConvInputGrad(d, dout.buffer, weight.buffer, dinp.buffer, { doutRows });
    }
    let dweight: Tensor | null = null;
    let dbias: Tensor | null = null;
    if (grads) {
      dweight = Tensor.empty(weight.shape);
      dbias = bias ? Tensor.empty([o]) : null;
      launchConvWeightGrad(d, inp.buffer, dout.buffer, dweight.buffer, dbias?.buffer ?? null, {
        rows,
        doutRows,
      });
    }
    if (doutRows && doutRows.buffer !== dout.buffer) releaseBuffer(doutRows.buffer);
    if (dout !== g) dout.dispose();
    return [dinp, dweight, dbias];
  }, kept ? [kept] : []);
  // Held by the graph until backward has run through it; freed at once if none was recorded.
  kept?.dispose();
  return out;
}
