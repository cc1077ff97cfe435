/**
 * Loss modules.
 *
 * @module
 */
import { Module } from "./module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { crossEntropy, type CrossEntropyOptions } from "../ops/cross_entropy/cross_entropy.ts";

/**
 * Mean softmax cross-entropy between logits and class indices (`torch.nn.CrossEntropyLoss`
 * with the default `reduction="mean"`): loss = (1/N) sum_n -log softmax(logits[n])[target[n]].
 *
 * Shape: logits [N, C], target [N] (class indices as f32) -> [] (0-d).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const loss = new nn.CrossEntropyLoss().forward(Tensor.zeros([4, 10]), Tensor.from([0, 1, 2, 3]));
 * assert.ok(Math.abs(await loss.item() - Math.log(10)) < 1e-5); // 2.3026 = log 10
 * ```
 */
export class CrossEntropyLoss extends Module {
  /** The options of {@link crossEntropy} (`ignoreIndex`, default -100). */
  readonly options: CrossEntropyOptions;
  /** A loss with PyTorch's defaults, or these options. */
  constructor(options: CrossEntropyOptions = {}) {
    super();
    this.options = { ...options };
  }
  /** The mean loss over the batch (over the rows whose target is not `ignoreIndex`). */
  forward(logits: Tensor, target: Tensor): Tensor {
    return crossEntropy(logits, target, this.options);
  }
}
