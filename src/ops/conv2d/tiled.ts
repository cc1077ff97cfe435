/**
 * conv2d's llvmpipe schedule: register-tiled implicit GEMMs (`tiled.wgsl`) and their host
 * logic, measured on Mesa's llvmpipe (lavapipe, Vulkan on the CPU; 2-core AMD EPYC and Intel
 * Xeon machines) and chosen only there, by `convSchedule` in conv2d.ts. They compute what
 * the plain kernels compute: the forward, the input gradient as the forward on the flipped
 * weight (unit stride; conv2d.ts runs the plain kernel for other strides), and the weight
 * gradient as a split reduction over N*OH*OW plus a small final sum. On any other adapter
 * nobody has measured them: the plain schedule runs there.
 *
 * What the schedule decides is a value, {@link Tiling} ({@link LLVMPIPE_TILING}: tile costs,
 * weight-gradient sets and channel quads, thread count), passed down with its name
 * ({@link TiledSchedule}); every launch is labelled `conv2d.<entry>@<schedule name>`.
 *
 * @module
 */
import { allocBuffer, releaseBuffer } from "../../gpu/buffer_pool.ts";
import { grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { UNIFORM_SCRATCH_FLOATS, uniformScratch } from "../../gpu/uniform_scratch.ts";
import { MAX_LOOP, type Schedule } from "../../gpu/profile.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { activationCode, type FusedActivation } from "../activation/activation.ts";
import type { Window } from "../window.ts";
import src from "./tiled.wgsl" with { type: "text" };

/** A convolution's sizes: the window over input [n, c, h, w] and o output channels. */
export interface ConvWindow extends Window {
  /** Output channels. */
  o: number;
}

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

/** Every tile the kernel has, in the order {@link Tiling.tileCosts} lists their costs. */
export const CONV_TILES: readonly ConvTile[] = [
  { channels: 4, pixels: 8 },
  { channels: 8, pixels: 4 },
  { channels: 8, pixels: 8 },
  { channels: 8, pixels: 12 },
];

/** What the tiled schedule decides, each setting measured where the schedule is chosen. */
export interface Tiling {
  /**
   * Time per computed output of each tile of {@link CONV_TILES} relative to 4 x 8: the
   * cost model of {@link columnPlan}.
   */
  readonly tileCosts: readonly number[];
  /**
   * (input channel, kernel row) sets per weight-gradient tile (CT in tiled.wgsl, 1 to 3;
   * 1 with a stride): the tile's dout vec4s per pixel quad are loaded once for all of them.
   */
  readonly weightSets: 1 | 2 | 3;
  /**
   * Output channel quads per weight-gradient tile (OQ in tiled.wgsl) when there are more
   * than 4 output channels (1 with a stride): 2 is 8 channels.
   */
  readonly weightQuads: 1 | 2;
  /** About how many threads (tiles x lanes) the weight gradient's reduction is split over. */
  readonly weightThreads: number;
}

/**
 * The tiling measured on llvmpipe (AMD EPYC and Intel Xeon, 2 cores, LLVM 15, 256 bits).
 *
 * `tileCosts` [1, 1.05, 0.76, 0.71] (interleaved medians of 5-7 rounds, on shapes that are
 * whole tiles of all of them): 8 x 4 1.05x, 8 x 8 0.78x at LeNet's conv2 forward
 * ([256,6,12,12] * [16,6,5,5]) and 1.05x, 0.74x at [64,32,16,16] * [64,32,3,3]: more work
 * per thread for the same weight loads and loop overhead. 8 x 12 against 8 x 8 (tiles A/B,
 * medians of 7 rounds): 0.78x at LeNet+BN's conv2 dinp (OW 12: one tile per row against
 * two), 0.72x at plain LeNet's conv2 forward (OW 10), 0.95x at LeNet+BN's conv1 forward
 * (OW 24, whole tiles of both), 1.02x at plain LeNet's conv1 forward (OW 28), 0.97x at
 * [64,16,28,28] * [16,16,3,3]: 0.65-0.73 per output, 0.71 taken (after the shared row loads
 * of tap_row, the same run: 0.74x, 0.70x, 0.98x, 1.04x, 0.93x). Since {@link columnPlan}
 * mixes tiles along a row (Intel Xeon; interleaved medians of 7 rounds against one tile per
 * row): plain LeNet's conv1 forward as 12 + 8 + 8 pixels 0.91x the time of four blocks of
 * 8, its conv2 dinp as 12 pixels at 5 taps + 4 at 2 0.91x two blocks of 8 at 5 (the model
 * said 0.85x and 0.84x).
 *
 * `weightSets` 3, against 1 set per tile (same process, interleaved, medians): LeNet's conv2
 * dweight 0.84x the time with 2 channels, 0.63x with 3, plain LeNet's 0.80x and 0.69x; conv1
 * (C = 1, sets of kernel rows) with 3 rows 0.82x, plain 0.80x.
 *
 * `weightQuads` 2 (AMD EPYC; same process, interleaved, medians of 4 runs of 9-15 rounds
 * against 1): each set's input values, 2-3 vec4 loads per pixel quad, feed twice the
 * multiply-adds: LeNet+BN's conv1 dweight 0.79-0.91x the time, conv2 0.79-0.90x, plain
 * LeNet's 0.86-0.92x and 0.84-1.00x.
 *
 * `weightThreads` 1024: on 2 cores about 1024 beat more splits.
 */
export const LLVMPIPE_TILING: Tiling = {
  tileCosts: [1, 1.05, 0.76, 0.71],
  weightSets: 3,
  weightQuads: 2,
  weightThreads: 1024,
};

/** A tiled schedule: its name (which every launch label carries) and its {@link Tiling}. */
export interface TiledSchedule extends Schedule {
  /** What it decides. */
  readonly tiling: Tiling;
}

/** The tile's channel quads (CQ in tiled.wgsl), after checking it is one the kernel has. */
function channelQuads(tile: ConvTile): 1 | 2 {
  if (!CONV_TILES.some((t) => t.channels === tile.channels && t.pixels === tile.pixels)) {
    throw new Error(
      `conv2d: no ${tile.channels} x ${tile.pixels} tile (channels x pixels); the kernel ` +
        `has ${CONV_TILES.map((t) => `${t.channels} x ${t.pixels}`).join(", ")}`,
    );
  }
  return tile.channels === 4 ? 1 : 2;
}

/** Threads per workgroup of every kernel (the forward's are WG x 1 x 1). */
const WG = 64;

/**
 * Lanes per workgroup of the kernels whose lanes run over images (the forward and the weight
 * gradient): WG, or fewer for a small batch, a multiple of 8 (llvmpipe's SIMD width). Every
 * other index of those kernels is the workgroup's, so the loops of a group of 8 lanes that
 * holds no image still run (masked), at full cost: at batch 2, 62 of 64 lanes were such.
 */
function imageLanes(n: number): number {
  return Math.min(WG, Math.max(MIN_LANES, Math.ceil(n / MIN_LANES) * MIN_LANES));
}

/** The fewest lanes of a workgroup: llvmpipe's vector of 8 floats (256 bits). */
const MIN_LANES = 8;

/** The launch of `entry` of tiled.wgsl under schedule `s`. */
function label(s: TiledSchedule, entry: string): string {
  return `conv2d.${entry}@${s.name}`;
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

function params(d: ConvWindow, e: Extra): Uniforms {
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
function paddedRows(
  s: TiledSchedule,
  d: ConvWindow,
  inp: GPUBuffer,
  into?: GPUBuffer,
): ConvRows {
  const wp = rowLength(d);
  if (wp === null) return { buffer: inp, wp: d.w, at: 0 };
  const total = d.n * d.c * d.h; // a thread per row
  const rows = into ?? allocBuffer(4 * total * wp, "conv2d padded rows");
  const entry = d.w % 4 === 0 && d.pw % 4 === 0 ? "pad_rows" : "pad_rows_scalar";
  launch({
    label: label(s, entry),
    code: src,
    entryPoint: entry,
    overrides: { WG },
    bindings: [params(d, { o4: 0, total, wp, pl: d.pw }), inp, rows],
    workgroups: grid(Math.ceil(total / WG)),
  });
  return { buffer: rows, wp, at: d.pw };
}

/** The padded row length the kernels read the input of `d` with, or null: read as it is. */
function rowLength(d: ConvWindow): number | null {
  const unit = d.sh === 1 && d.sw === 1;
  if (d.pw === 0 && (!unit || d.w % 4 === 0)) return null;
  return round4(d.w + 2 * d.pw);
}

/**
 * The input's padded rows [N, C, H, WP] as a tensor, for conv2d to keep in its graph when
 * the weight gradient will read them again (so that they are padded once, not in both
 * passes); null when the kernels read the input as it is.
 */
export function padInputRows(s: TiledSchedule, d: ConvWindow, inp: GPUBuffer): Tensor | null {
  const wp = rowLength(d);
  if (wp === null) return null;
  const kept = Tensor.empty([d.n, d.c, d.h, wp]);
  paddedRows(s, d, inp, kept.buffer);
  return kept;
}

/** The rows of {@link padInputRows}' tensor. */
function keptRows(d: ConvWindow, kept: Tensor): ConvRows {
  return { buffer: kept.buffer, wp: kept.shape[3], at: d.pw };
}

/**
 * Repacks `weight` (entry "pack_weight" or "pack_weight_flipped") into rows of `o4`
 * channels: into uniform scratch buffer 0 when it fits (safe to reuse call after call:
 * the queue runs every pack before the next one), else into a new storage buffer.
 */
function packWeight(
  s: TiledSchedule,
  entry: string,
  d: ConvWindow,
  weight: GPUBuffer,
  k: number,
  o4: number,
): { wpack: GPUBuffer; uniform: boolean } {
  const total = k * o4;
  const uniform = total <= UNIFORM_SCRATCH_FLOATS;
  const wpack = uniform ? uniformScratch() : allocBuffer(4 * total, "conv2d wpack");
  launch({
    label: label(s, entry),
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
function blockTaps(d: ConvWindow, x0: number, tw: number): { kxLo: number; kxHi: number } {
  if (d.sh !== 1 || d.sw !== 1 || d.kw > 8) return ALL_TAPS;
  return {
    kxLo: Math.max(0, d.pw - x0 - tw + 1),
    kxHi: Math.max(0, Math.min(d.kw, d.pw + d.w - x0)),
  };
}

/**
 * How the forward covers an output row: runs of pixel blocks, each of one tile, that
 * together cost least by the schedule's {@link Tiling.tileCosts}. A block costs its tile's
 * cost per output, times its pixels (those past the row included), times the taps it
 * computes (those that read only padding are skipped), over the share of its channel blocks
 * that exist (O rounded up to 4 or 8, except in a single block of channels, where TAIL skips
 * the absent ones). So the row may mix widths: plain LeNet's conv2 dinp (14 pixels, padding 4
 * around its 10x10 dout maps) as 12 pixels at 5 taps and 4 at 2, where two blocks of 8
 * computed 16 at 5 taps; its conv1 (28 pixels) as 12 + 8 + 8. Tiles of one run share a
 * channel count (one packed weight); ties go to the earlier tile of {@link CONV_TILES}. With
 * `tile`, every block is that tile (tests force each).
 */
export function columnPlan(s: TiledSchedule, d: ConvWindow, tile?: ConvTile): ColumnRun[] {
  const costs = s.tiling.tileCosts;
  const choices = tile
    ? [{ tile, cost: 1 }]
    : CONV_TILES.map((t, i) => ({ tile: t, cost: costs[i] }));
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
 * The vec4s j (bit j, 0 to 4) of the row window that tap_row reads for each block of `run`
 * (padded values x0 + 4j .. x0 + 4j + 3 for a block at pixel x0) which hold only the row's
 * padding in every block: tiled.wgsl's ZEROS, loads it skips. Unit stride only (0 otherwise).
 */
export function paddingQuads(d: ConvWindow, rows: ConvRows, run: ColumnRun): number {
  if (d.sh !== 1 || d.sw !== 1) return 0;
  let zeros = 0;
  for (let j = 0; j < 5; j++) {
    let padding = true;
    for (let b = 0; b < run.blocks && padding; b++) {
      const lo = run.x0 + b * run.tile.pixels + 4 * j; // padded values lo .. lo + 3
      padding = lo + 4 <= rows.at || lo >= rows.at + d.w;
    }
    if (padding) zeros |= 1 << j;
  }
  return zeros;
}

/**
 * out [N, O, OH, OW] = the convolution of `inp` with `weight` (+ bias), or, with
 * `flipped`, of dout with the weight flipped and transposed (dinp of a unit-stride
 * convolution, whose dims `d` are then those of that correlation). `rows`: the input's rows
 * already padded (by {@link padInputRows}; the caller keeps them, or by the backward);
 * `tile` forces every run's tile.
 */
export function launchTiledForward(
  s: TiledSchedule,
  d: ConvWindow,
  inp: GPUBuffer,
  weight: GPUBuffer,
  bias: GPUBuffer | null,
  out: GPUBuffer,
  opts: {
    flipped?: ConvWindow;
    tile?: ConvTile;
    activation?: FusedActivation;
    rows?: ConvRows | Tensor | null;
  } = {},
): void {
  if (opts.tile) channelQuads(opts.tile); // refuses a tile the kernel lacks
  const runs = columnPlan(s, d, opts.tile);
  const cq = channelQuads(runs[0].tile); // every run's: one packed weight
  const o4 = Math.ceil(d.o / (4 * cq)) * 4 * cq;
  const k = d.c * d.kh * d.kw;
  const { wpack, uniform } = opts.flipped
    ? packWeight(s, "pack_weight_flipped", opts.flipped, weight, k, o4)
    : packWeight(s, "pack_weight", d, weight, k, o4);
  const given = opts.rows instanceof Tensor ? keptRows(d, opts.rows) : opts.rows;
  const rows = given ?? paddedRows(s, d, inp);
  for (const run of runs) {
    const qw = run.blocks;
    // Fewer images than a vector's lanes: lanes over images and the run's blocks of a row.
    const xlanes = d.n < MIN_LANES && qw > 1;
    const lanes = imageLanes(xlanes ? d.n * qw : d.n);
    const blocks = xlanes ? d.oh : d.oh * qw; // per workgroup row of the grid
    launch({
      label: label(s, "forward"),
      code: src,
      entryPoint: "forward",
      overrides: {
        WG: lanes,
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
        ZEROS: paddingQuads(d, rows, run),
        UNIT_STRIDE: +(d.sh === 1 && d.sw === 1),
        OUT_ALIGNED: +(d.ow % 4 === 0),
        XLANES: +xlanes,
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
        Math.ceil((xlanes ? d.n * qw : d.n) / lanes),
        Math.min(blocks, 65535),
        (o4 / (4 * cq)) * Math.ceil(blocks / 65535),
      ],
    });
  }
  if (!uniform) releaseBuffer(wpack);
  if (!given && rows.buffer !== inp) releaseBuffer(rows.buffer);
}

/**
 * dweight [O, C, KH, KW] and dbias [O] (when `dbias` is given) from inp and dout. `quads`
 * (output channel quads per tile, 1 or 2; 2 with unit stride only) defaults to the
 * schedule's choice; tests force each. `rows`: the input's rows as the forward padded them
 * (kept by conv2d, so that they are padded once); `doutRows`: dout's rows padded by
 * another pass (dinp's), used when its values start on a vec4 (else dout is padded here).
 */
export function launchTiledWeightGrad(
  s: TiledSchedule,
  d: ConvWindow,
  inp: GPUBuffer,
  dout: GPUBuffer,
  dweight: GPUBuffer,
  dbias: GPUBuffer | null,
  opts: { quads?: 1 | 2; rows?: Tensor | null; doutRows?: ConvRows } = {},
): void {
  const { quads } = opts;
  const t = s.tiling;
  // A workgroup per tile (4 OQ output channels, CT (c, ky) sets, 8 taps), group of WG images
  // and range of output rows; each lane sums its images' rows into its own partial.
  const kxb = Math.ceil(d.kw / 8);
  const unit = d.sh === 1 && d.sw === 1;
  // sets of (c, ky) per tile: input channels, or kernel rows when there is one channel
  const ct = unit ? t.weightSets : 1;
  if (quads === 2 && !unit) {
    throw new Error(
      `conv2d: weight-gradient tiles of 8 channels (quads 2) need unit stride, got ` +
        `[${d.sh}, ${d.sw}]; pass 1 or leave it to the default`,
    );
  }
  const oq = unit ? quads ?? (d.o > 4 ? t.weightQuads : 1) : 1;
  const alongKy = d.c === 1;
  const sets = alongKy ? Math.ceil(d.kh / ct) : Math.ceil(d.c / ct) * d.kh;
  const tiles = Math.ceil(d.o / (4 * oq)) * sets * kxb;
  const wg = imageLanes(d.n);
  const groups = Math.max(
    1,
    Math.min(Math.ceil(t.weightThreads / (tiles * wg)), Math.ceil(d.n / wg)),
  );
  const lanes = groups * wg;
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
    WG: wg,
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
  const padded = opts.rows ? keptRows(d, opts.rows) : paddedRows(s, d, inp);
  // dout's rows padded to a multiple of 4 (when OW is not): every pixel quad is one load
  const doutDims = { ...d, c: d.o, h: d.oh, w: d.ow, sh: 1, sw: 1, ph: 0, pw: 0 };
  // another pass's padded rows serve when each row's values start on a vec4 and zeros
  // follow them up to the next multiple of 4
  const given = opts.doutRows;
  const doutRows = given && given.at % 4 === 0 && given.wp >= given.at + round4(d.ow)
    ? given
    : paddedRows(s, doutDims, dout);
  launch({
    label: label(s, "backward_weight"),
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
  if (!opts.rows && padded.buffer !== inp) releaseBuffer(padded.buffer);
  if (doutRows !== given && doutRows.buffer !== dout) releaseBuffer(doutRows.buffer);
  const total2 = d.o * kk + d.o;
  launch({
    label: label(s, "reduce_weight"),
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
function inputGradDims(d: ConvWindow): ConvWindow {
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
 * dinp [N, C, H, W] of a unit-stride convolution, from dout and the weight: the forward on
 * the flipped weight. `doutRows`: dout's rows as the backward padded them for both
 * gradients. Other strides are the plain kernel's (conv2d.ts).
 */
export function launchTiledInputGrad(
  s: TiledSchedule,
  d: ConvWindow,
  dout: GPUBuffer,
  weight: GPUBuffer,
  dinp: GPUBuffer,
  opts: { tile?: ConvTile; doutRows?: ConvRows } = {},
): void {
  if (d.sh !== 1 || d.sw !== 1) {
    throw new Error(
      `conv2d: the tiled input gradient needs unit stride, got [${d.sh}, ${d.sw}]; ` +
        `run the plain kernel (launchConvInputGrad)`,
    );
  }
  launchTiledForward(s, inputGradDims(d), dout, weight, null, dinp, {
    flipped: d,
    tile: opts.tile,
    rows: opts.doutRows,
  });
}

/**
 * The backward on the tiled schedule: dinp (unit stride only; null for none) and dweight
 * with dbias (null for none) from dout, sharing dout's padded rows between the two, and
 * reading the input's rows that the forward kept (`rows`, from {@link padInputRows}).
 */
export function launchTiledBackward(
  s: TiledSchedule,
  d: ConvWindow,
  b: { inp: GPUBuffer; weight: GPUBuffer; dout: GPUBuffer; rows: Tensor | null },
  g: { dinp: GPUBuffer | null; dweight: GPUBuffer | null; dbias: GPUBuffer | null },
): void {
  // dout's rows padded once for dinp, and read by the weight gradient too
  let doutRows: ConvRows | undefined;
  if (g.dinp) {
    if (g.dweight) doutRows = paddedRows(s, inputGradDims(d), b.dout);
    launchTiledInputGrad(s, d, b.dout, b.weight, g.dinp, { doutRows });
  }
  if (g.dweight) {
    launchTiledWeightGrad(s, d, b.inp, b.dout, g.dweight, g.dbias, { rows: b.rows, doutRows });
  }
  if (doutRows && doutRows.buffer !== b.dout) releaseBuffer(doutRows.buffer);
}
