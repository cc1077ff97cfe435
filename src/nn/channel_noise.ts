/**
 * `ChannelNoise`: a random scale and shift of each channel, drawn afresh at every training
 * step, the "Noisy BN" of Santurkar et al. 2018 when placed after a batch-norm layer.
 *
 * @module
 */
import { Module } from "./module.ts";
import { pyFloat } from "./repr.ts";
import { checkTensor, Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";
import { checkRandomState, type RandomState, rngFor } from "../tensor/random.ts";

/** Options of {@link ChannelNoise}. */
export interface ChannelNoiseOptions {
  /**
   * Spread of the multiplicative noise: each channel is scaled by `1 + scale * z`, z
   * standard normal. Default 0.5.
   */
  scale?: number;
  /** Spread of the additive noise: each channel is shifted by `shiftMean + shift * z`. Default 0.5. */
  shift?: number;
  /** Mean of the shift (Santurkar et al. use noise of non-zero mean). Default 0.2. */
  shiftMean?: number;
  /** Seed of the noise stream; default: drawn from the global generator. */
  seed?: number;
}

/**
 * Multiplies each channel by `1 + scale * z1[c]` and adds `shiftMean + shift * z2[c]`, with
 * z1, z2 standard normal, one draw per channel per forward call in training mode (drawn on
 * the GPU, nothing uploaded); the identity in eval mode. After a batch-norm layer this is
 * "Noisy BN": the distribution of each layer's input shifts at every step, on purpose,
 * which Santurkar et al. found BN trains through about as well (against the "internal
 * covariate shift" explanation). Gradients flow through the input; the noise is constant.
 *
 * Shape: [N, C, *] -> the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * const noise = new nn.ChannelNoise(3, { seed: 1 });
 * const x = Tensor.ones([2, 3, 4]);
 * const a = await noise.forward(x).toArray(), b = await noise.forward(x).toArray();
 * assert.notDeepEqual(a, b); // a fresh draw each step
 * assert.deepEqual(await noise.eval().forward(x).toArray(), await x.toArray());
 * ```
 */
export class ChannelNoise extends Module {
  /** Channels (dimension 1 of the input). */
  readonly numFeatures: number;
  /** Spread of the multiplicative noise. */
  readonly scale: number;
  /** Spread of the additive noise. */
  readonly shift: number;
  /** Mean of the additive noise. */
  readonly shiftMean: number;
  #seed: number;
  #calls = 0;

  /** Noise for `numFeatures` channels. */
  constructor(numFeatures: number, opts: ChannelNoiseOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new Error(`ChannelNoise needs a positive number of channels, got ${numFeatures}`);
    }
    const { scale = 0.5, shift = 0.5, shiftMean = 0.2, seed } = opts;
    for (const [k, v] of [["scale", scale], ["shift", shift]] as const) {
      if (!(v >= 0 && Number.isFinite(v))) {
        throw new Error(`ChannelNoise ${k} must be a finite number >= 0, got ${v}`);
      }
    }
    this.numFeatures = numFeatures;
    this.scale = scale;
    this.shift = shift;
    this.shiftMean = shiftMean;
    this.#seed = (seed ?? rngFor().nextU32()) >>> 0;
  }

  /** Its seed and the draws made so far, to resume training exactly. */
  randomState(): RandomState {
    return { seed: this.#seed, calls: this.#calls };
  }

  /** Restores a {@link ChannelNoise.randomState}: the next draw is the one it would have made. */
  loadRandomState(s: RandomState): void {
    checkRandomState("ChannelNoise", s);
    [this.#seed, this.#calls] = [s.seed, s.calls];
  }

  /** `6, scale=0.5, shift=0.5, shift_mean=0.2`, in PyTorch's manner. */
  override extraRepr(): string {
    return `${this.numFeatures}, scale=${pyFloat(this.scale)}, shift=${
      pyFloat(this.shift)
    }, shift_mean=${pyFloat(this.shiftMean)}`;
  }

  /** x * (1 + scale z1) + shiftMean + shift z2 per channel in training; x in eval. */
  forward(x: Tensor): Tensor {
    checkTensor(`${this.constructor.name}.forward`, "input", x);
    if (x.rank < 2 || x.shape[1] !== this.numFeatures) {
      throw new Error(
        `ChannelNoise(${this.numFeatures}) expects input [N, ${this.numFeatures}, ...], got ${
          fmt(x.shape)
        }`,
      );
    }
    if (!this.training) return x;
    const shape = x.shape.map((d, i) => (i === 1 ? d : 1));
    const step = this.#calls++;
    // Two streams per call, from seeds that depend only on (seed, call).
    const z1 = Tensor.randn(shape, { seed: (this.#seed + 2 * step) >>> 0 });
    const z2 = Tensor.randn(shape, { seed: (this.#seed + 2 * step + 1) >>> 0 });
    return x.mul(z1.mul(this.scale).add(1)).add(z2.mul(this.shift).add(this.shiftMean));
  }
}
