/**
 * `Dropout`: random zeroing in training mode, the identity in eval mode.
 *
 * @module
 */
import { Module } from "./module.ts";
import { pyFloat } from "./repr.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { dropout } from "../ops/dropout/dropout.ts";
import { checkRandomState, type RandomState, rngFor } from "../tensor/random.ts";

/** Options of {@link Dropout}. */
export interface DropoutLayerOptions {
  /** Seed of the layer's random stream; default: drawn from the global generator. */
  seed?: number;
}

/**
 * During training zeroes each element with probability `p` and scales the others by
 * 1 / (1 - p) (`torch.nn.Dropout`); in eval mode returns the input unchanged. Each call
 * draws a fresh mask (a counter in the kernel's uniform, no upload).
 *
 * Shape: any -> same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const drop = new nn.Dropout(0.5, { seed: 0 });
 * const y = await drop.forward(Tensor.ones([8])).toArray();
 * assert.ok(y.every((v) => v === 0 || v === 2));
 * assert.deepEqual(Array.from(await drop.eval().forward(Tensor.ones([2])).toArray()), [1, 1]);
 * ```
 */
export class Dropout extends Module {
  #seed: number;
  #calls = 0;

  /** Zeroes each element with probability `p` in training (and scales the rest by 1 / (1 - p)). */
  constructor(readonly p = 0.5, { seed }: DropoutLayerOptions = {}) {
    super();
    if (!(p >= 0 && p <= 1)) {
      throw new Error(`Dropout probability has to be between 0 and 1, got ${p}`);
    }
    this.#seed = (seed ?? rngFor().nextU32()) >>> 0;
  }

  /** The seed of its masks: call k of `forward` in training draws the mask of (seed, k). */
  get seed(): number {
    return this.#seed;
  }

  /** Its seed and the masks drawn so far, to resume training exactly. */
  randomState(): RandomState {
    return { seed: this.#seed, calls: this.#calls };
  }

  /** Restores a {@link Dropout.randomState}: the next mask is the one it would have drawn. */
  loadRandomState(s: RandomState): void {
    checkRandomState("Dropout", s);
    [this.#seed, this.#calls] = [s.seed, s.calls];
  }

  /** PyTorch's: `p=0.5, inplace=False`. */
  override extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=False`;
  }

  /** x * mask / (1 - p) in training, x in eval. */
  forward(x: Tensor): Tensor {
    if (!this.training) return x;
    return dropout(x, this.p, { seed: this.#seed, counter: this.#calls++ });
  }
}
