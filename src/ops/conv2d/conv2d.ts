/**
 * 2-D convolution on the GPU: `conv2d(inp, weight, bias, { stride, padding, activation })`,
 * PyTorch's `F.conv2d`, with its backward. The kernels (`tiled.wgsl`, launched by `tiled.ts`)
 * are register-blocked implicit GEMMs measured on llvmpipe ({@link CONV_LLVMPIPE}); every
 * launch is labelled `conv2d.<entry>@<schedule name>`.
 *
 * @module
 */
import { record, Tensor } from "../../tensor/tensor.ts";
import { isGradEnabled } from "../../tensor/autograd.ts";
import {
  activationCode,
  type FusedActivation,
  launchActivation,
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
} from "./tiled.ts";

export { pair };

/**
 * The llvmpipe schedule: register tiles of 4-8 channels x 4-12 pixels chosen per row by a
 * cost model, the input's rows padded once, the weight gradient as a split reduction
 * (tiled.ts, {@link LLVMPIPE_TILING} with each setting's figures).
 *
 * @example
 * ```ts
 * import { CONV_LLVMPIPE } from "./conv2d.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(CONV_LLVMPIPE.adapters, ["llvmpipe"]);
 * assert.match(CONV_LLVMPIPE.measured, /llvmpipe/);
 * assert.equal(CONV_LLVMPIPE.tiling?.weightSets, 3);
 * ```
 */
export const CONV_LLVMPIPE: TiledSchedule = {
  name: "llvmpipe",
  adapters: ["llvmpipe"],
  measured: "llvmpipe (LLVM 15, 256 bits) on 2-core AMD EPYC and Intel Xeon machines, each " +
    "step A/B against the one before (interleaved medians; commits 3b011ac to 85c7239): " +
    "LeNet's passes at 72-167% of the best matmul's GFLOP/s in the same round (medians of 3 " +
    "runs at 8849cde, AMD EPYC; 84-154% at c0ff1d1, Intel Xeon: bench/README.md)",
  tiling: LLVMPIPE_TILING,
};

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
  const d: ConvWindow = { ...slidingWindow("conv2d", inp.shape, [kh, kw], stride, padding), o };
  const tiled = CONV_LLVMPIPE;
  const out = Tensor.empty([d.n, o, d.oh, d.ow]);
  // The weight gradient (with dbias) runs in backward when either needs a gradient.
  const grads = weight.requiresGrad || (bias?.requiresGrad ?? false);
  // Tiled: the input's padded rows, kept (a saved tensor) when the weight gradient will read
  // them again, so that they are padded once, not in both passes.
  const kept = grads && isGradEnabled() ? padInputRows(tiled, d, inp.buffer) : null;
  launchTiledForward(tiled, d, inp.buffer, weight.buffer, bias?.buffer ?? null, out.buffer, {
    activation,
    rows: kept,
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
    const dinp = inp.requiresGrad ? Tensor.empty(inp.shape) : null;
    const dweight = grads ? Tensor.empty(weight.shape) : null;
    const dbias = grads && bias ? Tensor.empty([o]) : null;
    launchTiledBackward(
      tiled,
      d,
      { inp: inp.buffer, weight: weight.buffer, dout: dout.buffer, rows: kept },
      {
        dinp: dinp?.buffer ?? null,
        dweight: dweight?.buffer ?? null,
        dbias: dbias?.buffer ?? null,
      },
    );
    if (dout !== g) dout.dispose();
    return [dinp, dweight, dbias];
  }, kept ? [kept] : []);
  // Held by the graph until backward has run through it; freed at once if none was recorded.
  kept?.dispose();
  return out;
}
