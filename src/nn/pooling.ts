/**
 * `MaxPool2d` and `AvgPool2d`, the 2-D pooling layers.
 *
 * @module
 */
import { Module } from "./module.ts";
import { pyPair } from "./repr.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { avgPool2d, maxPool2d, type Pool2dOptions } from "../ops/pool/pool.ts";
import { pair } from "../ops/conv2d/conv2d.ts";

/**
 * 2-D max pooling layer (`torch.nn.MaxPool2d`): the maximum of each kh x kw window,
 *
 *     out[n, c, y, x] = max_{ky, kx} inp[n, c, y sh - ph + ky, x sw - pw + kx]
 *
 * with padding that never wins. Defaults: stride = kernel size, padding 0. The gradient
 * goes to each window's first maximum (PyTorch's tie-breaking).
 *
 * Shape: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 ph - kh) / sh) + 1 (likewise OW).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const pool = new nn.MaxPool2d(2);
 * const y = pool.forward(Tensor.from([1, 2, 3, 4], [1, 1, 2, 2]));
 * assert.deepEqual(Array.from(await y.toArray()), [4]);
 * assert.deepEqual(pool.forward(Tensor.zeros([256, 6, 24, 24])).shape, [256, 6, 12, 12]);
 * ```
 */
export class MaxPool2d extends Module {
  /** Window size [kh, kw]. */
  readonly kernelSize: [number, number];
  /** Stride [sh, sw]. */
  readonly stride: [number, number];
  /** Padding [ph, pw]. */
  readonly padding: [number, number];

  /** Windows of `kernelSize` (stride defaults to the kernel size, padding to 0). */
  constructor(kernelSize: number | readonly [number, number], opts: Pool2dOptions = {}) {
    super();
    this.kernelSize = pair(kernelSize, "MaxPool2d: kernelSize", 1);
    this.stride = pair(opts.stride ?? this.kernelSize, "MaxPool2d: stride", 1);
    this.padding = pair(opts.padding ?? 0, "MaxPool2d: padding", 0);
  }

  /** PyTorch's: `kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False`. */
  override extraRepr(): string {
    return `kernel_size=${pyPair(this.kernelSize)}, stride=${pyPair(this.stride)}, ` +
      `padding=${pyPair(this.padding)}, dilation=1, ceil_mode=False`;
  }

  /** The window maxima of `x` [N, C, H, W]. */
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}

/**
 * 2-D average pooling layer (`torch.nn.AvgPool2d`, with its defaults
 * `count_include_pad=True`, `ceil_mode=False`): the mean of each kh x kw window,
 *
 *     out[n, c, y, x] = (1 / (kh kw)) sum_{ky, kx} inp[n, c, y sh - ph + ky, x sw - pw + kx]
 *
 * with padding counted as zeros. Defaults: stride = kernel size, padding 0.
 *
 * Shape: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 ph - kh) / sh) + 1 (likewise OW).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const y = new nn.AvgPool2d(2).forward(Tensor.from([1, 2, 3, 4], [1, 1, 2, 2]));
 * assert.deepEqual(Array.from(await y.toArray()), [2.5]);
 * ```
 */
export class AvgPool2d extends Module {
  /** Window size [kh, kw]. */
  readonly kernelSize: [number, number];
  /** Stride [sh, sw]. */
  readonly stride: [number, number];
  /** Padding [ph, pw]. */
  readonly padding: [number, number];

  /** Windows of `kernelSize` (stride defaults to the kernel size, padding to 0). */
  constructor(kernelSize: number | readonly [number, number], opts: Pool2dOptions = {}) {
    super();
    this.kernelSize = pair(kernelSize, "AvgPool2d: kernelSize", 1);
    this.stride = pair(opts.stride ?? this.kernelSize, "AvgPool2d: stride", 1);
    this.padding = pair(opts.padding ?? 0, "AvgPool2d: padding", 0);
  }

  /** PyTorch's: `kernel_size=2, stride=2, padding=0`. */
  override extraRepr(): string {
    return `kernel_size=${pyPair(this.kernelSize)}, stride=${pyPair(this.stride)}, ` +
      `padding=${pyPair(this.padding)}`;
  }

  /** The window means of `x` [N, C, H, W]. */
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}
