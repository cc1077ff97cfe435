/**
 * Launchers of the fused activations (`activation.wgsl`): sigmoid and ReLU, one launch
 * forward and one backward, each backward reading what its forward saved (sigmoid its
 * output, ReLU its input). `Tensor.sigmoid()` and `Tensor.relu()` call them.
 *
 * @module
 */
import { grid, launch, Params } from "../../gpu/queue.ts";
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
    bindings: [new Params().u32(n4).u32(0).u32(0).u32(0), ...buffers],
    workgroups: grid(Math.ceil(n4 / WG)),
  });
}
