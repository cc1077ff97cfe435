/**
 * Launchers of the fused activations (`activation.wgsl`): sigmoid and ReLU, one launch
 * forward and one backward, each backward reading what its forward saved (sigmoid its
 * output, ReLU its input). `Tensor.sigmoid()` and `Tensor.relu()` call them.
 *
 * @module
 */
import { grid, launch, uniforms } from "../../gpu/queue.ts";
import src from "./activation.wgsl" with { type: "text" };

const WG = 256;

/** The entry points of `activation.wgsl`. */
export type ActivationEntry =
  | "sigmoid_forward"
  | "sigmoid_backward"
  | "relu_forward"
  | "relu_backward";

/**
 * Encodes one activation kernel over `n` elements. Forward bindings: `[inp, out]`;
 * backward: `[saved, dout, dinp]` (saved = sigmoid's output or ReLU's input).
 */
export function launchActivation(entry: ActivationEntry, buffers: GPUBuffer[], n: number): void {
  const n4 = Math.ceil(n / 4);
  launch({
    label: `activation.${entry}`,
    code: src,
    entryPoint: entry,
    overrides: { WG },
    bindings: [uniforms({ n4 }), ...buffers],
    workgroups: grid(Math.ceil(n4 / WG)),
  });
}

/** An activation a kernel can apply in the same pass as its own work (`{ activation }`). */
export type FusedActivation = "sigmoid" | "relu";

/**
 * The backward of an activation that a kernel applied as it stored `out` ({@link
 * FusedActivation}): `dinp` = `dout` through its derivative, read off `out` (for ReLU, out > 0
 * iff its input was), over `n` elements. One launch.
 */
export function launchFusedActivationBackward(
  activation: FusedActivation,
  out: GPUBuffer,
  dout: GPUBuffer,
  dinp: GPUBuffer,
  n: number,
): void {
  const entry = activation === "sigmoid" ? "sigmoid_backward" : "relu_backward";
  launchActivation(entry, [out, dout, dinp], n);
}

/**
 * The `ACT` override of every kernel with a fused activation (batch norm, conv2d, max
 * pooling): 0 none, 1 ReLU, 2 sigmoid. Refuses any other value, naming `op` and the choices.
 */
export function activationCode(op: string, activation: FusedActivation | undefined): 0 | 1 | 2 {
  if (activation === undefined) return 0;
  if (activation === "relu") return 1;
  if (activation === "sigmoid") return 2;
  throw new Error(
    `${op}: activation must be "sigmoid" or "relu", got ${JSON.stringify(activation)}`,
  );
}
