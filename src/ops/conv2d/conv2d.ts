/**
 * 2-D convolution on the GPU: `conv2d(inp, weight, bias, { stride, padding, activation })`,
 * PyTorch's `F.conv2d`, with its backward, on one of two schedules that compute the same sums:
 *
 * - plain (`conv2d.wgsl` and the launchers here): one thread per element of the result,
 *   summing its terms as the float64 reference (`reference.ts`) does. Correct on any
 *   adapter, and the default wherever nobody has measured another.
 * - llvmpipe (`tiled.wgsl`, `tiled.ts`): register-tiled implicit GEMMs, measured on Mesa's
 *   llvmpipe and chosen only there.
 *
 * {@link convSchedule} picks one from the adapter profile; `opts.schedule` passes another
 * (tests, benchmarks). Every launch is labelled `conv2d.<entry>@<schedule name>`.
 *
 * @module
 */
import { adapterProfile } from "../../gpu/device.ts";
import { type AdapterProfile, choose, MAX_LOOP, type Schedule } from "../../gpu/profile.ts";
import { grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { checkTensor, record, Tensor } from "../../tensor/tensor.ts";
import { isGradEnabled } from "../../tensor/autograd.ts";
import {
  activationCode,
  type FusedActivation,
  launchFusedActivationBackward,
} from "../activation/activation.ts";
import { fmt } from "../../tensor/shape.ts";
import { pair, slidingWindow } from "../window.ts";
import {
  type ConvWindow,
  launchTiledBackward,
  launchTiledForward,
  LLVMPIPE_TILING,
  padInputRows,
  type TiledSchedule,
  type Tiling,
} from "./tiled.ts";
import src from "./conv2d.wgsl" with { type: "text" };

export { pair };

/**
 * How conv2d cuts its work: the plain kernels (`tiling` null), or the tiled kernels with the
 * settings that `tiling` holds (tiled.ts). As every {@link Schedule}, it names the adapter
 * families it is chosen on and how it was measured there.
 */
export interface ConvSchedule extends Schedule {
  /** The tiled kernels' settings, or null: the plain kernels. */
  readonly tiling: Tiling | null;
}

/**
 * The plain schedule: one thread per element of the result (out, dinp, dweight, dbias),
 * looping over its terms as the float64 reference does. Chosen on every adapter without a
 * measured schedule; on llvmpipe it takes 17-61x the llvmpipe schedule's time on LeNet's
 * passes (see {@link CONV_LLVMPIPE}).
 */
export const CONV_PLAIN: ConvSchedule = {
  name: "plain",
  adapters: [],
  measured: "",
  tiling: null,
};

/**
 * The llvmpipe schedule: register tiles of 4-8 channels x 4-12 pixels chosen per row by a
 * cost model, the input's rows padded once, the weight gradient as a split reduction
 * (tiled.ts, {@link LLVMPIPE_TILING} with each setting's figures). Chosen on llvmpipe only.
 */
export const CONV_LLVMPIPE: TiledSchedule = {
  name: "llvmpipe",
  adapters: ["llvmpipe"],
  measured: "llvmpipe (LLVM 15, 256 bits) on 2-core AMD EPYC and Intel Xeon machines, each " +
    "step A/B against the one before (interleaved medians; commits 3b011ac to 85c7239): " +
    "LeNet's passes at 72-167% of the best matmul's GFLOP/s in the same round (medians of 3 " +
    "runs at 8849cde, AMD EPYC; 84-154% at c0ff1d1, Intel Xeon: bench/README.md); the plain " +
    "schedule takes 17-61x its time on LeNet+BN's six passes (medians of 6 conv2d_bench runs, " +
    "AMD EPYC: bench/README.md)",
  tiling: LLVMPIPE_TILING,
};

/**
 * Every schedule of conv2d, plain first: the tests run each against the float64 reference.
 */
export const CONV2D_SCHEDULES: readonly ConvSchedule[] = [CONV_PLAIN, CONV_LLVMPIPE];

/**
 * The schedule conv2d runs on an adapter: the one measured on its family, else the plain one.
 */
export function convSchedule(profile: AdapterProfile): ConvSchedule {
  return choose(profile, CONV_PLAIN, CONV_LLVMPIPE);
}

const isTiled = (s: ConvSchedule): s is TiledSchedule => s.tiling !== null;

/** Threads per workgroup of the plain kernels. */
const WG = 64;

function params(d: ConvWindow, lo: number, hi: number): Uniforms {
  const { n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph, pw } = d;
  return uniforms({ n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph, pw, lo, hi });
}

/**
 * A sum over `count` outer indices, each `inner` iterations of the innermost loop, cut into
 * slices [lo, hi) of at most MAX_LOOP innermost iterations: one dispatch each (llvmpipe
 * silently ends longer loops). At least one slice, since the first writes the result.
 */
function slices(count: number, inner: number): [number, number][] {
  const per = Math.floor(MAX_LOOP / inner);
  const out: [number, number][] = [];
  for (let lo = 0; lo === 0 || lo < count; lo += per) out.push([lo, Math.min(lo + per, count)]);
  return out;
}

/**
 * The taps of the kernel, which the plain forward and dinp loop over per channel: refused
 * past MAX_LOOP (a kernel larger than 128x128, which no network we know of uses).
 */
function plainTaps(d: ConvWindow): number {
  const taps = d.kh * d.kw;
  if (taps > MAX_LOOP) {
    throw new Error(
      `conv2d: a ${d.kh}x${d.kw} kernel has ${taps} taps, more than the plain schedule's ` +
        `threads loop over (MAX_LOOP ${MAX_LOOP}); use a kernel of at most ${MAX_LOOP} taps`,
    );
  }
  return taps;
}

/**
 * out [N, O, OH, OW] = act(bias + the convolution of `inp` with `weight`), one thread per
 * output, on the plain schedule.
 */
export function launchConvForward(
  d: ConvWindow,
  inp: GPUBuffer,
  weight: GPUBuffer,
  bias: GPUBuffer | null,
  out: GPUBuffer,
  activation?: FusedActivation,
): void {
  const taps = plainTaps(d);
  const overrides = { WG, HAS_BIAS: +(bias !== null), ACT: activationCode("conv2d", activation) };
  for (const [lo, hi] of slices(d.c, taps)) {
    launch({
      label: `conv2d.forward@${CONV_PLAIN.name}`,
      code: src,
      entryPoint: "forward",
      overrides,
      bindings: [params(d, lo, hi), inp, weight, bias ?? placeholder(0), out],
      workgroups: grid(Math.ceil((d.n * d.o * d.oh * d.ow) / WG)),
    });
  }
}

/**
 * dinp [N, C, H, W] from dout and the weight, one thread per input element gathering the
 * outputs whose windows cover it (any stride), on the plain schedule.
 */
export function launchConvInputGrad(
  d: ConvWindow,
  dout: GPUBuffer,
  weight: GPUBuffer,
  dinp: GPUBuffer,
): void {
  const taps = plainTaps(d);
  for (const [lo, hi] of slices(d.o, taps)) {
    launch({
      label: `conv2d.backward_inp@${CONV_PLAIN.name}`,
      code: src,
      entryPoint: "backward_inp",
      overrides: { WG },
      bindings: [params(d, lo, hi), dinp, weight, dout],
      workgroups: grid(Math.ceil((d.n * d.c * d.h * d.w) / WG)),
    });
  }
}

/**
 * dweight [O, C, KH, KW] and dbias [O] (when `dbias` is given) from inp and dout, one thread
 * per element looping over the output positions (n, y, x), on the plain schedule.
 */
export function launchConvWeightGrad(
  d: ConvWindow,
  inp: GPUBuffer,
  dout: GPUBuffer,
  dweight: GPUBuffer,
  dbias: GPUBuffer | null,
): void {
  const threads = d.o * d.c * d.kh * d.kw + (dbias ? d.o : 0);
  for (const [lo, hi] of slices(d.n * d.oh * d.ow, 1)) {
    launch({
      label: `conv2d.backward_weight@${CONV_PLAIN.name}`,
      code: src,
      entryPoint: "backward_weight",
      overrides: { WG, HAS_BIAS: +(dbias !== null) },
      bindings: [params(d, lo, hi), inp, dweight, dout, dbias ?? placeholder(1)],
      workgroups: grid(Math.ceil(threads / WG)),
    });
  }
}

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
  /**
   * How the kernels cut the work, for tests and benchmarks: one of {@link CONV2D_SCHEDULES}.
   * Default: the adapter profile's choice, `convSchedule(adapterProfile())` (the llvmpipe
   * schedule on llvmpipe, the plain one elsewhere). Every schedule computes the same sums.
   */
  schedule?: ConvSchedule;
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
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const x = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
 * const w = Tensor.ones([1, 1, 2, 2]); // sums each 2x2 window
 * const y = F.conv2d(x, w, Tensor.from([0.5]));
 * assert.deepEqual(y.shape, [1, 1, 2, 2]);
 * assert.deepEqual(Array.from(await y.toArray()), [12.5, 16.5, 24.5, 28.5]);
 * // stride 2, padding 1: windows at -1 and 1 of the padded 5x5 input
 * assert.deepEqual(F.conv2d(x, w, null, { stride: 2, padding: 1 }).shape, [1, 1, 2, 2]);
 * ```
 */
export function conv2d(
  inp: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: Conv2dOptions = {},
): Tensor {
  checkTensor("conv2d", "input", inp);
  checkTensor("conv2d", "weight", weight);
  checkTensor("conv2d", "bias", bias, true);
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
  const d: ConvWindow = { ...slidingWindow("conv2d", inp.shape, [kh, kw], stride, padding), o };
  const s = opts.schedule ?? convSchedule(adapterProfile());
  const tiled = isTiled(s) ? s : null;
  const out = Tensor.empty([d.n, o, d.oh, d.ow]);
  // The weight gradient (with dbias) runs in backward when either needs a gradient.
  const grads = weight.requiresGrad || (bias?.requiresGrad ?? false);
  // Tiled: the input's padded rows, kept (a saved tensor) when the weight gradient will read
  // them again, so that they are padded once, not in both passes.
  const kept = tiled && grads && isGradEnabled() ? padInputRows(tiled, d, inp.buffer) : null;
  const b = bias?.buffer ?? null;
  if (tiled) {
    launchTiledForward(tiled, d, inp.buffer, weight.buffer, b, out.buffer, {
      activation,
      rows: kept,
    });
  } else launchConvForward(d, inp.buffer, weight.buffer, b, out.buffer, activation);
  const parents = bias ? [inp, weight, bias] : [inp, weight];
  const op = activation ? `conv2d+${activation}` : "conv2d";
  record(out, op, parents, (g) => {
    // through the activation first, from its saved output (y > 0 iff x > 0 for ReLU)
    let dout = g;
    if (activation) {
      dout = Tensor.empty(out.shape);
      launchFusedActivationBackward(activation, out.buffer, g.buffer, dout.buffer, out.numel);
    }
    const dinp = inp.requiresGrad ? Tensor.empty(inp.shape) : null;
    const dweight = grads ? Tensor.empty(weight.shape) : null;
    const dbias = grads && bias ? Tensor.empty([o]) : null;
    // the tiled dinp is the forward on the flipped weight: unit stride only
    const tiledDinp = tiled !== null && d.sh === 1 && d.sw === 1;
    if (tiled) {
      launchTiledBackward(
        tiled,
        d,
        { inp: inp.buffer, weight: weight.buffer, dout: dout.buffer, rows: kept },
        {
          dinp: tiledDinp ? dinp?.buffer ?? null : null,
          dweight: dweight?.buffer ?? null,
          dbias: dbias?.buffer ?? null,
        },
      );
    }
    if (dinp && !tiledDinp) launchConvInputGrad(d, dout.buffer, weight.buffer, dinp.buffer);
    if (dweight && !tiled) {
      launchConvWeightGrad(d, inp.buffer, dout.buffer, dweight.buffer, dbias?.buffer ?? null);
    }
    if (dout !== g) dout.dispose();
    return [dinp, dweight, dbias];
  }, kept ? [kept] : []);
  // Held by the graph until backward has run through it; freed at once if none was recorded.
  kept?.dispose();
  return out;
}
