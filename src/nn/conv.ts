/**
 * `Conv2d`, the 2-D convolution layer.
 *
 * @module
 */
import { Module } from "./module.ts";
import { checkTensor, Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";
import { conv2d, type Conv2dOptions, pair } from "../ops/conv2d/conv2d.ts";
import { pytorchDefault } from "./init.ts";
import { fusibleActivation } from "./fusion.ts";
import { py } from "./repr.ts";
import type { FusedActivation } from "../ops/activation/activation.ts";

/**
 * Options of {@link Conv2d}: the convolution's own (`stride`, `padding`, as a number for
 * both dimensions or [h, w]) and the layer's.
 */
export interface Conv2dLayerOptions extends Conv2dOptions {
  /** Learn an additive bias per output channel. Default true. */
  bias?: boolean;
  /** Seed of the initial weights; default: the global generator ({@link manualSeed}). */
  seed?: number;
}

/**
 * 2-D convolution layer (`torch.nn.Conv2d`): a bank of `outChannels` filters of size
 * inChannels x kh x kw slid over the input,
 *
 *     out[n, o, y, x] = bias[o] + sum_{c, ky, kx} inp[n, c, y sh - ph + ky, x sw - pw + kx]
 *                                                 * weight[o, c, ky, kx]
 *
 * with zero padding. Parameters: `weight` [outChannels, inChannels, kh, kw] and `bias`
 * [outChannels], both initialised as PyTorch does, from U(-1/sqrt(fanIn), 1/sqrt(fanIn)),
 * fanIn = inChannels kh kw. Defaults: stride 1, padding 0, bias true.
 *
 * Shape: [N, inChannels, H, W] -> [N, outChannels, OH, OW] with
 * OH = floor((H + 2 ph - kh) / sh) + 1 and OW = floor((W + 2 pw - kw) / sw) + 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const conv = new nn.Conv2d(1, 6, 5, { seed: 0 }); // LeNet's first layer
 * const y = conv.forward(Tensor.randn([4, 1, 28, 28]));
 * assert.deepEqual(y.shape, [4, 6, 24, 24]);
 * assert.deepEqual(Object.keys(conv.stateDict()), ["weight", "bias"]);
 * assert.deepEqual(new nn.Conv2d(1, 6, 5, { padding: 2 }).forward(Tensor.zeros([1, 1, 28, 28])).shape, [1, 6, 28, 28]);
 * ```
 */
export class Conv2d extends Module {
  /** Weight [outChannels, inChannels, kh, kw]. */
  readonly weight: Tensor;
  /** Bias [outChannels], or null with `{ bias: false }`. */
  readonly bias: Tensor | null;
  /** Kernel size [kh, kw]. */
  readonly kernelSize: [number, number];
  /** Stride [sh, sw]. */
  readonly stride: [number, number];
  /** Padding [ph, pw]. */
  readonly padding: [number, number];

  /** `outChannels` filters of `kernelSize` over `inChannels` channels; weights as PyTorch initialises them. */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | readonly [number, number],
    { stride = 1, padding = 0, bias = true, seed }: Conv2dLayerOptions = {},
  ) {
    super();
    for (const [name, v] of [["inChannels", inChannels], ["outChannels", outChannels]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(`Conv2d expects ${name} to be a positive integer, got ${v}`);
      }
    }
    this.kernelSize = pair(kernelSize, "Conv2d: kernelSize", 1);
    this.stride = pair(stride, "Conv2d: stride", 1);
    this.padding = pair(padding, "Conv2d: padding", 0);
    const [kh, kw] = this.kernelSize;
    this.weight = this.registerParameter("weight", Tensor.empty([outChannels, inChannels, kh, kw]));
    this.bias = this.registerParameter("bias", bias ? Tensor.empty([outChannels]) : null);
    pytorchDefault(this.weight, this.bias, { seed });
  }

  /** PyTorch's: `1, 6, kernel_size=(5, 5), stride=(1, 1)`, then padding if any, `bias=False` if none. */
  override extraRepr(): string {
    const padding = this.padding.some((p) => p !== 0) ? `, padding=${py(this.padding)}` : "";
    return `${this.inChannels}, ${this.outChannels}, kernel_size=${py(this.kernelSize)}, ` +
      `stride=${py(this.stride)}${padding}${this.bias ? "" : ", bias=False"}`;
  }

  /** The convolution of `x` [N, inChannels, H, W]; see the class doc. */
  forward(x: Tensor): Tensor {
    checkTensor(`${this.constructor.name}.forward`, "input", x);
    return this.convolve(x);
  }

  /**
   * Conv2d followed by a plain Sigmoid or ReLU as one kernel (`conv2d(..., { activation })`,
   * see {@link Module.fusedWith}); null for any other pair, or when either module's
   * `forward` is not its class's own (a forward hook, a subclass).
   */
  override fusedWith(next: Module): ((x: Tensor) => Tensor) | null {
    if (this.forward !== Conv2d.prototype.forward) return null;
    const activation = fusibleActivation(next);
    return activation ? (x) => this.convolve(x, activation) : null;
  }

  /** The convolution of `x`, with `activation` applied in the same kernel if given. */
  private convolve(x: Tensor, activation?: FusedActivation): Tensor {
    const [kh, kw] = this.kernelSize;
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) {
      const k = kh === kw ? `${kh}` : `[${kh}, ${kw}]`;
      throw new Error(
        `Conv2d(${this.inChannels}, ${this.outChannels}, ${k}) expects input [N, ${this.inChannels}, H, W], got ${
          fmt(x.shape)
        }`,
      );
    }
    const opts = { stride: this.stride, padding: this.padding, activation };
    return conv2d(x, this.weight, this.bias, opts);
  }
}
