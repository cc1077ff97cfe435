/**
 * Dropout on the GPU (`dropout.wgsl`): random bits from a counter-based hash of
 * (seed, counter, element index), so a step costs one launch and no upload.
 *
 * @module
 */
import { grid, launch, uniforms } from "../../gpu/queue.ts";
import { checkTensor, record, Tensor } from "../../tensor/tensor.ts";
import { rngFor } from "../../tensor/random.ts";
import src from "./dropout.wgsl" with { type: "text" };

const WG = 256;

/** Options of {@link dropout}. */
export interface DropoutOptions {
  /** 32-bit seed of the random stream; default: drawn from the global generator. */
  seed?: number;
  /** Call counter: the same (seed, counter) gives the same mask. Default 0. */
  counter?: number;
}

/**
 * Zeroes each element with probability `p` and scales the rest by 1 / (1 - p), so the
 * expected value is unchanged: out = inp * mask, mask[i] in {0, 1/(1-p)}. The mask is
 * saved for the backward, dinp = dout * mask. This is the training-mode op; in eval mode
 * the `Dropout` layer is the identity.
 *
 * Shape: any -> same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const y = await F.dropout(Tensor.ones([1000]), 0.5, { seed: 1 }).toArray();
 * assert.ok(y.every((v) => v === 0 || v === 2));
 * ```
 */
export function dropout(inp: Tensor, p: number, opts: DropoutOptions = {}): Tensor {
  checkTensor("dropout", "input", inp);
  if (!(p >= 0 && p <= 1)) {
    throw new Error(`dropout probability has to be between 0 and 1, got ${p}`);
  }
  const seed = (opts.seed ?? rngFor().nextU32()) >>> 0;
  const counter = (opts.counter ?? 0) >>> 0;
  const threshold = Math.min(Math.round(p * 2 ** 32), 2 ** 32 - 1);
  const scale = p === 1 ? 0 : 1 / (1 - p);
  const n = inp.numel;
  const out = Tensor.empty(inp.shape);
  const mask = Tensor.empty(inp.shape);
  const params = () => uniforms({ n, seed, counter, threshold, scale });
  launch({
    label: "dropout.forward",
    code: src,
    entryPoint: "forward",
    overrides: { WG },
    bindings: [params(), inp.buffer, out.buffer, mask.buffer],
    workgroups: grid(Math.ceil(n / WG)),
  });
  const res = record(out, "dropout", [inp], (dout) => {
    const dinp = Tensor.empty(inp.shape);
    launch({
      label: "dropout.backward",
      code: src,
      entryPoint: "backward",
      overrides: { WG },
      bindings: [params(), mask.buffer, dout.buffer, dinp.buffer],
      workgroups: grid(Math.ceil(n / WG)),
    });
    return [dinp];
  }, [mask]);
  if (!res.requiresGrad) mask.dispose(); // else the backward's cache, held by the graph
  return res;
}
