/**
 * Activation layers: `Sigmoid` and `ReLU` (`Tensor.sigmoid()`/`relu()`: fused kernels).
 *
 * @module
 */
import { Module } from "./module.ts";
import { checkTensor, type Tensor } from "../tensor/tensor.ts";
import { MaxPool2d } from "./pooling.ts";
import { maxPool2d } from "../ops/pool/pool.ts";
import type { FusedActivation } from "../ops/activation/activation.ts";

/**
 * Logistic sigmoid, y = 1 / (1 + exp(-x)) (`torch.nn.Sigmoid`).
 *
 * Shape: any -> same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * assert.deepEqual(Array.from(await new nn.Sigmoid().forward(Tensor.from([0])).toArray()), [0.5]);
 * ```
 */
export class Sigmoid extends Module {
  /** y = sigmoid(x). */
  forward(x: Tensor): Tensor {
    checkTensor(`${this.constructor.name}.forward`, "input", x);
    return x.sigmoid();
  }

  /** Sigmoid then a plain MaxPool2d as one pass (see {@link pooledAfter}); else null. */
  override fusedWith(next: Module): ((x: Tensor) => Tensor) | null {
    return pooledAfter(this, Sigmoid.prototype.forward, "sigmoid", next);
  }
}

/**
 * Rectified linear unit, y = max(x, 0) (`torch.nn.ReLU`).
 *
 * Shape: any -> same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * assert.deepEqual(Array.from(await new nn.ReLU().forward(Tensor.from([-1, 2])).toArray()), [0, 2]);
 * ```
 */
export class ReLU extends Module {
  /** y = max(x, 0). */
  forward(x: Tensor): Tensor {
    checkTensor(`${this.constructor.name}.forward`, "input", x);
    return x.relu();
  }

  /** ReLU then a plain MaxPool2d as one pass (see {@link pooledAfter}); else null. */
  override fusedWith(next: Module): ((x: Tensor) => Tensor) | null {
    return pooledAfter(this, ReLU.prototype.forward, "relu", next);
  }
}

/**
 * An activation module followed by a MaxPool2d, as `maxPool2d(x, ..., { activation })`: the
 * window maxima first, then the activation of each (the same values, the activation being
 * monotone, on a quarter of the elements for 2x2 windows, each way). Null when either
 * module's `forward` is not its class's own (a hook, a subclass) or `next` is no MaxPool2d.
 */
function pooledAfter(
  self: Module,
  own: Module["forward"],
  activation: FusedActivation,
  next: Module,
): ((x: Tensor) => Tensor) | null {
  if (self.forward !== own || next.forward !== MaxPool2d.prototype.forward) return null;
  const pool = next as MaxPool2d;
  return (x) =>
    maxPool2d(x, pool.kernelSize, { stride: pool.stride, padding: pool.padding, activation });
}
