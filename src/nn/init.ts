/**
 * Parameter initialisation in place, as `torch.nn.init`: Xavier (Glorot) uniform, zeros,
 * ones. "In place" writes into the tensor's own buffer through an encoded copy (never
 * `queue.writeBuffer` on a pooled buffer), so it is ordered with all other GPU work.
 *
 * @module
 */
import { checkTensor, copyInto, Tensor } from "../tensor/tensor.ts";
import { rngFor } from "../tensor/random.ts";
import { fmt } from "../tensor/shape.ts";

/**
 * Fan-in and fan-out of a weight as PyTorch computes them: for [out, in, ...kernel],
 * fanIn = in * prod(kernel) and fanOut = out * prod(kernel).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "../../mod.ts";
 * assert.deepEqual(nn.init.fans([16, 6, 5, 5]), { fanIn: 150, fanOut: 400 });
 * ```
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new Error(
      `Fan in and fan out need a tensor with at least 2 dimensions, got ${fmt(shape)}`,
    );
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** Options of {@link xavierUniform}. */
export interface XavierOptions {
  /** Scaling factor (e.g. 1 for sigmoid, sqrt(2) for ReLU). Default 1. */
  gain?: number;
  /** Seed; default: the global generator ({@link manualSeed}). */
  seed?: number;
}

function writeInPlace(t: Tensor, data: Float32Array): Tensor {
  using src = Tensor.from(data, t.shape);
  copyInto(t, src);
  return t;
}

/**
 * Fills `t` in place with samples of U(-a, a), a = gain * sqrt(6 / (fanIn + fanOut))
 * (`torch.nn.init.xavier_uniform_`); returns `t`.
 *
 * Shape: weights of rank >= 2 ([out, in] or [out, in, kh, kw]).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const w = nn.init.xavierUniform(Tensor.empty([120, 256]), { seed: 0 });
 * const a = Math.sqrt(6 / (256 + 120));
 * assert.ok((await w.toArray()).every((v) => Math.abs(v) <= a));
 * ```
 */
export function xavierUniform(t: Tensor, { gain = 1, seed }: XavierOptions = {}): Tensor {
  checkTensor("init.xavierUniform", "tensor", t);
  const { fanIn, fanOut } = fans(t.shape);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  const rng = rngFor(seed);
  const data = new Float32Array(t.numel);
  for (let i = 0; i < data.length; i++) data[i] = a * (2 * rng.uniform() - 1);
  return writeInPlace(t, data);
}

/**
 * Fills `t` (a Linear or Conv2d weight) and `bias` in place as PyTorch initialises its
 * layers (`reset_parameters`): `kaiming_uniform_(weight, a=sqrt(5))`, which is
 * U(-1/sqrt(fanIn), 1/sqrt(fanIn)), and the bias from the same bound. The weight draws from
 * `seed`, the bias from `seed + 1` (both from the global generator without a seed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const w = Tensor.zeros([120, 256]), b = Tensor.zeros([120]);
 * nn.init.pytorchDefault(w, b, { seed: 0 });
 * const bound = 1 / Math.sqrt(256);
 * assert.ok((await w.toArray()).every((v) => Math.abs(v) <= bound));
 * ```
 */
export function pytorchDefault(
  weight: Tensor,
  bias: Tensor | null,
  { seed }: { seed?: number } = {},
): void {
  checkTensor("init.pytorchDefault", "weight", weight);
  checkTensor("init.pytorchDefault", "bias", bias, true);
  const bound = weight.shape[1] ? 1 / Math.sqrt(fans(weight.shape).fanIn) : 0;
  uniform(weight, -bound, bound, { seed });
  if (bias) uniform(bias, -bound, bound, { seed: seed === undefined ? undefined : seed + 1 });
}

/**
 * Fills `t` with samples of U(low, high) in place; returns `t`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const b = nn.init.uniform(Tensor.empty([5]), -0.1, 0.1, { seed: 1 });
 * assert.ok((await b.toArray()).every((v) => v >= -0.1 && v <= 0.1));
 * ```
 */
export function uniform(
  t: Tensor,
  low: number,
  high: number,
  { seed }: { seed?: number } = {},
): Tensor {
  checkTensor("init.uniform", "tensor", t);
  const rng = rngFor(seed);
  const data = new Float32Array(t.numel);
  for (let i = 0; i < data.length; i++) data[i] = low + (high - low) * rng.uniform();
  return writeInPlace(t, data);
}

/**
 * Fills `t` with zeros in place; returns `t`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * assert.deepEqual(Array.from(await nn.init.zeros(Tensor.ones([3])).toArray()), [0, 0, 0]);
 * ```
 */
export function zeros(t: Tensor): Tensor {
  checkTensor("init.zeros", "tensor", t);
  return fillInPlace(t, 0);
}

/**
 * Fills `t` with ones in place; returns `t`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * assert.deepEqual(Array.from(await nn.init.ones(Tensor.zeros([2])).toArray()), [1, 1]);
 * ```
 */
export function ones(t: Tensor): Tensor {
  checkTensor("init.ones", "tensor", t);
  return fillInPlace(t, 1);
}

function fillInPlace(t: Tensor, value: number): Tensor {
  using src = Tensor.full(t.shape, value); // a fill kernel, then an ordered copy
  copyInto(t, src);
  return t;
}
