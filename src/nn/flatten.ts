/**
 * `Flatten`: merges a range of dimensions into one (a view, no copy).
 *
 * @module
 */
import { Module } from "./module.ts";
import { checkTensor, type Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";

/**
 * Flattens dimensions `startDim` .. `endDim` (inclusive; negative counts from the end) into
 * one (`torch.nn.Flatten`). The result is a view sharing the input's storage.
 *
 * Shape: [N, C, H, W] -> [N, C * H * W] with the defaults (startDim = 1, endDim = -1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * assert.deepEqual(new nn.Flatten().forward(Tensor.zeros([256, 16, 4, 4])).shape, [256, 256]);
 * ```
 */
export class Flatten extends Module {
  /** Merges dimensions `startDim` to `endDim` (negative: from the end), as PyTorch's default. */
  constructor(readonly startDim: number = 1, readonly endDim: number = -1) {
    super();
  }

  /** PyTorch's: `start_dim=1, end_dim=-1`. */
  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }

  /** The input viewed with dimensions startDim..endDim merged. */
  forward(x: Tensor): Tensor {
    checkTensor(`${this.constructor.name}.forward`, "input", x);
    const r = x.rank;
    const s = this.startDim < 0 ? this.startDim + r : this.startDim;
    const e = this.endDim < 0 ? this.endDim + r : this.endDim;
    if (r === 0) return x.reshape([1]);
    if (s < 0 || s >= r || e < 0 || e >= r || s > e) {
      throw new Error(
        `Flatten(startDim=${this.startDim}, endDim=${this.endDim}) does not fit input ${
          fmt(x.shape)
        }: both must lie in [${-r}, ${r - 1}] with start <= end`,
      );
    }
    const merged = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
    return x.reshape([...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)]);
  }
}
