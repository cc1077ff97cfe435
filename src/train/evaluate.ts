/**
 * Accuracy and predictions in inference mode: d2l's `evaluate_accuracy_gpu` and
 * `predict_ch3`.
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import { Tensor } from "../tensor/tensor.ts";
import { noGrad } from "../tensor/autograd.ts";
import { tidy } from "../tensor/tidy.ts";
import { countCorrect } from "../ops/cross_entropy/cross_entropy.ts";
import type { Batch } from "../data/loader.ts";

/**
 * What `fit` and {@link evaluateAccuracy} need of a data loader: `DataLoader` fits, and so
 * does a plain object yielding `{ x, y }` batches (images `[B, 1, 28, 28]`, f32 labels `[B]`).
 */
export interface Loader {
  /** Batches per epoch. */
  readonly length: number;
  /** Examples per epoch, if known (for progress bars). */
  readonly n?: number;
  /**
   * The batches of one epoch (the epoch number, from 0, seeds the shuffle). The consumer
   * owns the yielded tensors and disposes them after use, as with `DataLoader`.
   */
  batches(epoch: number): Iterable<Batch> | AsyncIterable<Batch>;
}

/**
 * Runs `fn` with `net` in eval mode (or `training` as given), restoring every module's
 * previous mode afterwards.
 */
export async function withMode<T>(
  net: Module,
  training: boolean,
  fn: () => Promise<T>,
): Promise<T> {
  const modes = new Map<Module, boolean>();
  const walk = (m: Module) => {
    modes.set(m, m.training);
    for (const [, c] of m.namedChildren()) walk(c);
  };
  walk(net);
  net.train(training);
  try {
    return await fn();
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/**
 * The fraction of correctly classified examples over one pass of `loader`, in eval mode
 * (BatchNorm uses its running statistics), without gradients. The correct count stays on
 * the GPU until the end: one host wait per call. The previous train/eval mode is restored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluateAccuracy } from "./evaluate.ts";
 * import { Sequential } from "../nn/sequential.ts";
 * import { Flatten } from "../nn/flatten.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { getDevice } from "../gpu/device.ts";
 * await getDevice();
 * // A "network" that copies 10 pixels: logits = x, so the class is the brightest pixel.
 * const net = new Sequential(new Flatten());
 * const x = Tensor.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [2, 10]);
 * const y = Tensor.from([2, 5]);
 * // The loader's consumer disposes each batch: hand out views of x and y.
 * const loader = { length: 1, batches: () => [{ x: x.detach(), y: y.detach() }] };
 * assert.equal(await evaluateAccuracy(net, loader), 0.5);
 * ```
 */
export function evaluateAccuracy(net: Module, loader: Loader): Promise<number> {
  return withMode(net, false, async () => {
    let correct = Tensor.zeros([]);
    let n = 0;
    try {
      for await (const { x, y } of loader.batches(0)) {
        using _x = x, _y = y; // the loader hands over ownership of each batch
        const next = tidy(() => noGrad(() => correct.add(countCorrect(net.forward(x), y))));
        correct.dispose();
        correct = next;
        n += x.shape[0];
      }
      return n ? (await correct.item()) / n : NaN;
    } finally {
      correct.dispose();
    }
  });
}

/**
 * The predicted class of each image (argmax of the logits), in eval mode, without
 * gradients. `images` is `[N, 1, 28, 28]`; returns N class indices.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { predict } from "./evaluate.ts";
 * import { Sequential } from "../nn/sequential.ts";
 * import { Flatten } from "../nn/flatten.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { getDevice } from "../gpu/device.ts";
 * await getDevice();
 * const net = new Sequential(new Flatten());
 * const x = Tensor.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], [2, 10]);
 * assert.deepEqual(await predict(net, x), [2, 9]);
 * ```
 */
export function predict(net: Module, images: Tensor): Promise<number[]> {
  return withMode(net, false, async () => {
    const logits = tidy(() => noGrad(() => net.forward(images)));
    try {
      const v = await logits.toArray();
      const [n, k] = [logits.shape[0], logits.size / logits.shape[0]];
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let j = 1; j < k; j++) if (v[i * k + j] > v[i * k + best]) best = j;
        out.push(best);
      }
      return out;
    } finally {
      logits.dispose();
    }
  });
}
