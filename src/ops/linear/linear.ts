/**
 * The linear layer's maths on the GPU: `linear(inp, weight, bias)` = inp @ weight^T + bias,
 * with a fused backward (`matmul.wgsl`). On llvmpipe the forward and the input gradient run
 * the batch kernels from a batch of 8 (the activations read as uniforms, in 64 KiB chunks of
 * whole rows), and the weight gradient (with dbias) `weight_grad` at every batch (dout in
 * uniform chunks); smaller batches, other adapters and sizes they cannot take (a row length
 * not a multiple of 4, a batch over 2048 for the weight gradient) run the general 4x4-tile
 * products. See products.ts.
 *
 * @module
 */
import { checkTensor, record, Tensor } from "../../tensor/tensor.ts";
import { fmt } from "../../tensor/shape.ts";
import {
  activationCode,
  type FusedActivation,
  launchFusedActivationBackward,
} from "../activation/activation.ts";
import {
  type LinearSchedule,
  linearSchedule,
  productAB,
  productABt,
  type ProductActivation,
  productAtB,
} from "./products.ts";

export {
  LINEAR_LLVMPIPE,
  LINEAR_PLAIN,
  LINEAR_SCHEDULES,
  type LinearSchedule,
  linearSchedule,
} from "./products.ts";

/** Options of {@link linear}. */
export interface LinearOptions {
  /**
   * An activation applied to the output in the same kernel (`"sigmoid"` or `"relu"`), as
   * `linear(...).sigmoid()` would, and its derivative applied to dout inside the backward
   * products (or the packs that feed them dout).
   */
  activation?: FusedActivation;
  /** How the products cut the work (tests, benchmarks); default {@link linearSchedule}'s. */
  schedule?: LinearSchedule;
}

/**
 * Applies an affine map to the last dimension: `out = inp @ weight^T + bias`, i.e.
 * out[..., o] = sum_i inp[..., i] * weight[o, i] + bias[o] (PyTorch's `F.linear`).
 * Differentiable in all three arguments.
 *
 * Shape: inp [..., in], weight [out, in], bias [out] or null -> [..., out].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const x = Tensor.from([[1, 2]]);
 * const w = Tensor.from([[3, 4], [5, 6]]);
 * const y = F.linear(x, w, Tensor.from([0.5, -0.5]));
 * assert.deepEqual(Array.from(await y.toArray()), [11.5, 16.5]);
 * ```
 */
export function linear(
  inp: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: LinearOptions = {},
): Tensor {
  checkTensor("linear", "input", inp);
  checkTensor("linear", "weight", weight);
  checkTensor("linear", "bias", bias, true);
  const s = opts.schedule ?? linearSchedule();
  const act = activationCode("linear", opts.activation); // refuses an unknown one first
  if (weight.rank !== 2) {
    throw new Error(`linear expects a 2-D weight [out, in], got ${fmt(weight.shape)}`);
  }
  const [O, I] = weight.shape;
  if (inp.rank < 1 || inp.shape[inp.rank - 1] !== I) {
    throw new Error(
      `linear expects input [..., ${I}] to match weight ${fmt(weight.shape)}, got ${
        fmt(inp.shape)
      }`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== O)) {
    throw new Error(`linear expects bias [${O}] to match weight's rows, got ${fmt(bias.shape)}`);
  }
  const N = inp.shape.slice(0, -1).reduce((x, y) => x * y, 1);
  const outShape = [...inp.shape.slice(0, -1), O];
  const out = Tensor.empty(outShape);
  // Empty sizes need no special case: K = 0 gives all-zero products, M or P = 0 no dispatch.
  productABt(s, inp, weight, out, bias?.buffer ?? null, N, I, O, act);
  const parents = bias ? [inp, weight, bias] : [inp, weight];
  const op = opts.activation ? `linear+${opts.activation}` : "linear";
  return record(out, op, parents, (g) => {
    // Through the activation, from its saved output (y > 0 iff x > 0 for ReLU): inside the
    // products (or their packs of dout), or, when I = 0 (no product runs: dbias sums dout),
    // by a launch of its own.
    let dout = g;
    let fused: ProductActivation | undefined;
    if (opts.activation && I === 0) {
      dout = Tensor.empty(out.shape);
      launchFusedActivationBackward(opts.activation, out.buffer, g.buffer, dout.buffer, out.numel);
    } else if (act !== 0) fused = { code: act, saved: out.buffer };
    let dinp: Tensor | null = null;
    if (inp.requiresGrad) {
      // dinp [N, I] = dout [N, O] @ weight [O, I]
      dinp = Tensor.empty(inp.shape);
      productAB(s, dout, weight, dinp, N, O, I, fused);
    }
    let dweight: Tensor | null = null;
    let dbias: Tensor | null = null;
    if (weight.requiresGrad || bias?.requiresGrad) {
      // dweight [O, I] = dout^T [O, N] @ inp [N, I]; dbias [O] = rows of dout^T summed
      dweight = Tensor.empty(weight.shape);
      dbias = bias ? Tensor.empty([O]) : null;
      const buf = dbias?.buffer ?? null;
      productAtB(s, dout, inp, dweight, buf, O, N, I, fused);
      if (dbias && I === 0) { // no threads ran (P = 0): sum dout directly
        dbias.dispose();
        dbias = dout.reshape([N, O]).sum(0);
      }
    }
    if (dout !== g) dout.dispose();
    return [dinp, dweight, dbias];
  });
}
