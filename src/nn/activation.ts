/**
 * Activation layers: `Sigmoid` and `ReLU` (`Tensor.sigmoid()`/`relu()`: fused kernels).
 *
 * @module
 */
import { Module } from "./module.ts";
import type { Tensor } from "../tensor/tensor.ts";

/**
 * Logistic sigmoid, y = 1 / (1 + exp(-x)) (`torch.nn.Sigmoid`).
 *
 * Shape: any -> same.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../mod.ts";
 * import { Sigmoid } from "./activation.ts";
 * console.log(await new Sigmoid().forward(Tensor.from([0])).toArray()); // Float32Array [0.5]
 * ```
 */
export class Sigmoid extends Module {
  /** y = sigmoid(x). */
  forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
}

/**
 * Rectified linear unit, y = max(x, 0) (`torch.nn.ReLU`).
 *
 * Shape: any -> same.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../mod.ts";
 * import { ReLU } from "./activation.ts";
 * console.log(await new ReLU().forward(Tensor.from([-1, 2])).toArray()); // Float32Array [0, 2]
 * ```
 */
export class ReLU extends Module {
  /** y = max(x, 0). */
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}

/**
 * What `next` computes when it is a plain Sigmoid or ReLU (its class's own `forward`: no
 * forward hook, no subclass), for a module that can apply it in its own kernel (see
 * {@link Module.fusedWith}); else null.
 *
 * @example
 * ```ts
 * import { fusibleActivation, ReLU, Sigmoid } from "./activation.ts";
 * console.log(fusibleActivation(new Sigmoid())); // "sigmoid"
 * const hooked = new ReLU();
 * hooked.registerForwardHook(() => {});
 * console.log(fusibleActivation(hooked)); // null
 * ```
 */
export function fusibleActivation(next: Module): "sigmoid" | "relu" | null {
  if (next.forward === Sigmoid.prototype.forward) return "sigmoid";
  if (next.forward === ReLU.prototype.forward) return "relu";
  return null;
}
