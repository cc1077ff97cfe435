/**
 * Which activation module a layer can apply in its own kernel (batch norm, convolution):
 * the check behind their {@link Module.fusedWith}. Internal to `nn`: not exported by
 * `mod.ts`.
 *
 * @module
 */
import type { Module } from "./module.ts";
import { ReLU, Sigmoid } from "./activation.ts";
import type { FusedActivation } from "../ops/activation/activation.ts";

/**
 * What `next` computes when it is a plain Sigmoid or ReLU (its class's own `forward`: no
 * forward hook, no subclass), for a module that can apply it in its own kernel (see
 * {@link Module.fusedWith}); else null.
 */
export function fusibleActivation(next: Module): FusedActivation | null {
  if (next.forward === Sigmoid.prototype.forward) return "sigmoid";
  if (next.forward === ReLU.prototype.forward) return "relu";
  return null;
}
