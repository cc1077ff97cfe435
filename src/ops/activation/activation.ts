/**
 * Sigmoid and ReLU as fused kernels (`activation.wgsl`): one launch forward, one launch
 * backward, each reading what the forward saved (sigmoid its output, ReLU its input).
 * `Tensor.sigmoid()`/`relu()` build the same maths from elementwise primitives, with a
 * three-launch backward; the layers use these.
 *
 * @module
 */
import { grid, launch, Params } from "../../gpu/queue.ts";
import { record, Tensor } from "../../tensor/tensor.ts";
import src from "./activation.wgsl" with { type: "text" };

const WG = 256;

function run(entry: string, bindings: Tensor[], n: number): void {
  const n4 = Math.ceil(n / 4);
  launch({
    label: `activation.${entry}`,
    code: src,
    entryPoint: entry,
    overrides: { WG },
    bindings: [new Params().u32(n4).u32(0).u32(0).u32(0), ...bindings.map((t) => t.buffer)],
    workgroups: grid(Math.ceil(n4 / WG)),
  });
}

/**
 * Logistic sigmoid, out = 1 / (1 + exp(-inp)), with the fused backward
 * dinp = dout * out * (1 - out).
 *
 * Shape: any -> same.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../../mod.ts";
 * import { sigmoid } from "./activation.ts";
 * const y = sigmoid(Tensor.from([0, 100, -100]));
 * console.log(await y.toArray()); // Float32Array [0.5, 1, 0]
 * ```
 */
export function sigmoid(inp: Tensor): Tensor {
  const out = Tensor.empty(inp.shape);
  run("sigmoid_forward", [inp, out], inp.size);
  return record(out, "sigmoid", [inp], (dout) => {
    const dinp = Tensor.empty(inp.shape);
    run("sigmoid_backward", [out, dout, dinp], inp.size);
    return [dinp];
  });
}

/**
 * Rectified linear unit, out = max(inp, 0), with the fused backward
 * dinp = dout * (inp > 0).
 *
 * Shape: any -> same.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../../mod.ts";
 * import { relu } from "./activation.ts";
 * const y = relu(Tensor.from([-2, 0, 3]));
 * console.log(await y.toArray()); // Float32Array [0, 0, 3]
 * ```
 */
export function relu(inp: Tensor): Tensor {
  const out = Tensor.empty(inp.shape);
  run("relu_forward", [inp, out], inp.size);
  return record(out, "relu", [inp], (dout) => {
    const dinp = Tensor.empty(inp.shape);
    run("relu_backward", [inp, dout, dinp], inp.size);
    return [dinp];
  });
}
