/**
 * Stochastic gradient descent with momentum and weight decay (PyTorch's `torch.optim.SGD`):
 * one WGSL kernel (`sgd.wgsl`) updates every parameter, in flat copies.
 *
 * @module
 */
import { copyBuffer, grid, launch, uniforms } from "../gpu/queue.ts";
import { allocBuffer, releaseBuffer } from "../gpu/buffer_pool.ts";
import { placeholder } from "../gpu/placeholder.ts";
import { checkTensor, markWritten, type Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";
import src from "./sgd.wgsl" with { type: "text" };

const WG = 256;
/** Floats from one parameter's start to the next's in the flat buffers: 256 bytes. */
const ALIGN = 64;

/** Options of {@link SGD}. */
export interface SGDOptions {
  /** Learning rate (required). */
  lr: number;
  /** Momentum factor; 0 (default) is plain SGD. */
  momentum?: number;
  /** L2 penalty added to the gradient: g = grad + weightDecay * param. Default 0. */
  weightDecay?: number;
}

/**
 * SGD with PyTorch's update rule, per parameter p with gradient grad:
 * g = grad + weightDecay * p; buf = momentum * buf + g (buf = g on the first step);
 * p -= lr * buf (p -= lr * g without momentum). Parameters without a gradient are skipped.
 *
 * `step()` never waits for the GPU, and runs one kernel for all the parameters: they are
 * copied, with their gradients, into flat buffers the optimizer owns (each at its own
 * 256-byte-aligned place), updated there in one launch per run of consecutive parameters
 * that the step treats alike (all of them, unless some have no gradient or no momentum yet),
 * and copied back. A buffer-to-buffer copy costs a few microseconds, a launch tens on
 * llvmpipe: LeNet+BN's 18 parameters were 18 launches a step.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../mod.ts";
 * import { SGD } from "./sgd.ts";
 * import assert from "node:assert/strict";
 * const w = Tensor.from([1, 2], { requiresGrad: true });
 * const opt = new SGD([w], { lr: 0.1 });
 * w.square().sum().backward(); // grad = 2w
 * opt.step(); // w -= 0.1 * 2w
 * assert.deepEqual(Array.from(await w.toArray()), [0.8, 1.6].map(Math.fround));
 * ```
 */
export class SGD {
  /** Learning rate; may be changed between steps (schedules). */
  lr: number;
  /** Momentum factor. */
  readonly momentum: number;
  /** Weight decay (L2 penalty). */
  readonly weightDecay: number;
  /** The parameters being optimised. */
  readonly params: readonly Tensor[];
  /** Each parameter's first float in the flat buffers (a multiple of 64: 256 bytes). */
  #offsets: number[] = [];
  /** Floats in each flat buffer. */
  #total = 0;
  /** The flat parameters, gradients and momentum (made on the first step that needs them). */
  #flat: { params?: GPUBuffer; grads?: GPUBuffer; momentum?: GPUBuffer } = {};
  /** Whether each parameter's momentum has had its first step. */
  #started: boolean[] = [];

  /** An optimizer of `params` (each needs `requiresGrad`); `lr` is required. */
  constructor(params: Iterable<Tensor>, { lr, momentum = 0, weightDecay = 0 }: SGDOptions) {
    if (!(lr >= 0)) throw new Error(`SGD needs a learning rate lr >= 0, got ${lr}`);
    if (!(momentum >= 0)) throw new Error(`SGD needs momentum >= 0, got ${momentum}`);
    if (!(weightDecay >= 0)) throw new Error(`SGD needs weightDecay >= 0, got ${weightDecay}`);
    this.params = [...params];
    this.params.forEach((p, i) => checkTensor("SGD", `params[${i}]`, p));
    if (this.params.length === 0) throw new Error("SGD got an empty parameter list");
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    for (const p of this.params) {
      this.#offsets.push(this.#total);
      this.#total += Math.ceil(Math.max(p.numel, 1) / ALIGN) * ALIGN;
    }
    this.#started = this.params.map(() => false);
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    const useBuf = this.momentum !== 0;
    const active = this.params.map((p) => {
      const g = p.grad;
      if (!g || p.numel === 0) return false;
      if (g.numel !== p.numel) {
        throw new Error(`SGD: gradient ${fmt(g.shape)} does not match parameter ${fmt(p.shape)}`);
      }
      return true;
    });
    if (!active.some((a) => a)) return;
    const flat = this.#flat;
    flat.params ??= allocBuffer(4 * this.#total, "sgd flat params");
    flat.grads ??= allocBuffer(4 * this.#total, "sgd flat grads");
    if (useBuf) flat.momentum ??= allocBuffer(4 * this.#total, "sgd momentum");
    // in: each active parameter and its gradient, at its offset
    this.params.forEach((p, i) => {
      if (!active[i]) return;
      copyBuffer(p.grad!.buffer, flat.grads!, 4 * p.numel, 0, 4 * this.#offsets[i]);
      copyBuffer(p.buffer, flat.params!, 4 * p.numel, 0, 4 * this.#offsets[i]);
    });
    // one launch per run of consecutive active parameters alike in their momentum's start
    for (let i = 0; i < this.params.length;) {
      if (!active[i]) {
        i++;
        continue;
      }
      const first = useBuf && !this.#started[i];
      let j = i + 1;
      while (j < this.params.length && active[j] && (!useBuf || this.#started[j] === !first)) j++;
      const end = j < this.params.length ? this.#offsets[j] : this.#total;
      const n4 = Math.ceil((end - this.#offsets[i]) / 4);
      launch({
        label: "sgd",
        code: src,
        overrides: { WG, MOMENTUM: +useBuf, FIRST: +first },
        bindings: [
          uniforms({
            n4,
            base4: this.#offsets[i] / 4,
            lr: this.lr,
            momentum: this.momentum,
            weight_decay: this.weightDecay,
          }),
          flat.params!,
          flat.grads!,
          flat.momentum ?? placeholder(),
        ],
        workgroups: grid(Math.ceil(n4 / WG)),
      });
      for (let k = i; k < j; k++) this.#started[k] = true;
      i = j;
    }
    // out: the updated parameters
    this.params.forEach((p, i) => {
      if (!active[i]) return;
      copyBuffer(flat.params!, p.buffer, 4 * p.numel, 4 * this.#offsets[i], 0);
      markWritten(p); // a backward that saved p before this step would now be wrong
    });
  }

  /** Frees and clears the gradients of all parameters (PyTorch's `set_to_none=True`). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees the flat buffers and the momentum (the optimizer can go on: it starts afresh). */
  dispose(): void {
    for (const b of Object.values(this.#flat)) if (b) releaseBuffer(b);
    this.#flat = {};
    this.#started = this.params.map(() => false);
  }

  /** Same as {@link SGD.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
