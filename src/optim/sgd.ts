/**
 * Stochastic gradient descent with momentum and weight decay (PyTorch's `torch.optim.SGD`),
 * one in-place WGSL kernel per parameter per step (`sgd.wgsl`).
 *
 * @module
 */
import { grid, launch, uniforms } from "../gpu/queue.ts";
import { allocBuffer, releaseBuffer } from "../gpu/buffer_pool.ts";
import { placeholder } from "../gpu/placeholder.ts";
import { markWritten, type Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";
import src from "./sgd.wgsl" with { type: "text" };

const WG = 256;

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
 * `step()` encodes one kernel per parameter and never waits for the GPU.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../mod.ts";
 * import { SGD } from "./sgd.ts";
 * const w = Tensor.from([1, 2], { requiresGrad: true });
 * const opt = new SGD([w], { lr: 0.1 });
 * w.square().sum().backward(); // grad = 2w
 * opt.step(); // w -= 0.1 * 2w
 * console.log(await w.toArray()); // Float32Array [0.8, 1.6]
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
  #buffers = new Map<Tensor, GPUBuffer>();

  /** An optimizer of `params` (each needs `requiresGrad`); `lr` is required. */
  constructor(params: Iterable<Tensor>, { lr, momentum = 0, weightDecay = 0 }: SGDOptions) {
    if (!(lr >= 0)) throw new Error(`SGD needs a learning rate lr >= 0, got ${lr}`);
    if (!(momentum >= 0)) throw new Error(`SGD needs momentum >= 0, got ${momentum}`);
    if (!(weightDecay >= 0)) throw new Error(`SGD needs weightDecay >= 0, got ${weightDecay}`);
    this.params = [...params];
    if (this.params.length === 0) throw new Error("SGD got an empty parameter list");
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    for (const p of this.params) {
      const g = p.grad;
      if (!g) continue;
      if (g.numel !== p.numel) {
        throw new Error(`SGD: gradient ${fmt(g.shape)} does not match parameter ${fmt(p.shape)}`);
      }
      const useBuf = this.momentum !== 0;
      let buf = this.#buffers.get(p);
      const first = useBuf && !buf;
      if (first) {
        buf = allocBuffer(p.numel * 4, "sgd momentum");
        this.#buffers.set(p, buf);
      }
      const n4 = Math.ceil(p.numel / 4);
      launch({
        label: "sgd",
        code: src,
        overrides: { WG, MOMENTUM: useBuf ? 1 : 0, FIRST: first ? 1 : 0 },
        bindings: [
          uniforms({ n4, lr: this.lr, momentum: this.momentum, weight_decay: this.weightDecay }),
          p.buffer,
          g.buffer,
          buf ?? placeholder(),
        ],
        workgroups: grid(Math.ceil(n4 / WG)),
      });
      markWritten(p); // a backward that saved p before this step would now be wrong
    }
  }

  /** Frees and clears the gradients of all parameters (PyTorch's `set_to_none=True`). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees the momentum buffers (the optimizer can go on: they start afresh). */
  dispose(): void {
    for (const b of this.#buffers.values()) releaseBuffer(b);
    this.#buffers.clear();
  }

  /** Same as {@link SGD.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
