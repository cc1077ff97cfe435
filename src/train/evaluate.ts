/**
 * Accuracy and predictions: d2l's `evaluate_accuracy_gpu` and `predict_ch3`, in eval mode
 * by default, or in training mode (batch statistics) with every running statistic left
 * exactly as it was.
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import { copyInto, Tensor } from "../tensor/tensor.ts";
import { noGrad } from "../tensor/autograd.ts";
import { keep, tidy } from "../tensor/tidy.ts";
import { countCorrect } from "../ops/cross_entropy/cross_entropy.ts";
import { allocBuffer, releaseBuffer } from "../gpu/buffer_pool.ts";
import { copyBuffer, readBuffer } from "../gpu/queue.ts";
import type { Batch } from "../data/loader.ts";

/**
 * What `fit` and {@link evaluateAccuracy} need of a data loader: `DataLoader` fits, and so
 * does a plain object yielding `{ x, y }` batches (images `[B, 1, 28, 28]`, f32 labels `[B]`).
 * The loader owns the batches it yields: a consumer uses each before asking for the next.
 */
export interface Loader {
  /** Batches per epoch. */
  readonly length: number;
  /** Examples per epoch, if known (for progress bars). */
  readonly n?: number;
  /** Examples per batch, if known. */
  readonly batchSize?: number;
  /** Whether a last, smaller batch is left out, if known. */
  readonly dropLast?: boolean;
  /** The batches of one epoch (the epoch number, from 0, seeds the shuffle). */
  batches(epoch: number): Iterable<Batch> | AsyncIterable<Batch>;
}

/** Reads several one-element tensors back with a single host wait. */
export async function readScalars(ts: Tensor[]): Promise<number[]> {
  const staging = allocBuffer(ts.length * 4, "scalar readback");
  try {
    ts.forEach((t, i) => copyBuffer(t.buffer, staging, 4, 0, 4 * i));
    return [...new Float32Array(await readBuffer(staging, ts.length * 4))];
  } finally {
    releaseBuffer(staging);
  }
}

/**
 * Runs `fn` with `net` in eval mode (`training` false) or training mode, restoring every
 * module's previous mode afterwards.
 */
export async function withMode<T>(
  net: Module,
  training: boolean,
  fn: () => Promise<T>,
): Promise<T> {
  const modes = new Map(net.modules().map((m) => [m, m.training]));
  net.train(training);
  try {
    return await fn();
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/** Options of {@link evaluateAccuracy}. */
export interface EvaluateOptions {
  /**
   * `"eval"` (default): inference mode, batch norm normalizes with its running
   * statistics. `"train"`: training mode, with each batch's own statistics (and dropout
   * active), as the training steps saw it; every buffer (running statistics, counters)
   * is restored afterwards, bit for bit.
   */
  mode?: "eval" | "train";
}

/**
 * Runs `fn` and then puts every buffer of `net` back as it was (GPU copies, no readback),
 * for passes that must not move running statistics.
 */
export async function preservingBuffers<T>(net: Module, fn: () => Promise<T>): Promise<T> {
  const saved = net.namedBuffers().map(([name, t]) => [name, keep(t.clone())] as const);
  try {
    return await fn();
  } finally {
    const now = new Map(net.namedBuffers());
    for (const [name, copy] of saved) {
      const t = now.get(name);
      if (t && t.numel === copy.numel) copyInto(t, copy);
      copy.dispose();
    }
  }
}

/**
 * The fraction of correctly classified examples over one pass of `loader`, without
 * gradients, in eval mode (batch norm uses its running statistics) or, with
 * `{ mode: "train" }`, in training mode with the running statistics left untouched. The
 * correct count stays on the GPU until the end: one host wait per call. The previous
 * train/eval mode is restored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Sequential, Tensor } from "../../mod.ts";
 * import { evaluateAccuracy } from "../../train.ts";
 * // A "network" that copies 10 pixels: logits = x, so the class is the brightest pixel.
 * const net = new Sequential(new nn.Flatten());
 * const x = Tensor.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [2, 10]);
 * const y = Tensor.from([2, 5]);
 * const loader = { length: 1, batches: () => [{ x, y }] };
 * assert.equal(await evaluateAccuracy(net, loader), 0.5);
 * ```
 */
export async function evaluateAccuracy(
  net: Module,
  loader: Loader,
  { mode = "eval" }: EvaluateOptions = {},
): Promise<number> {
  if (mode !== "eval" && mode !== "train") {
    throw new Error(
      `evaluateAccuracy: mode must be "eval" or "train", got ${JSON.stringify(mode)}`,
    );
  }
  const pass = () =>
    withMode(net, mode === "train", async () => {
      let correct = keep(Tensor.zeros([]));
      let n = 0;
      try {
        for await (const { x, y } of loader.batches(0)) {
          const next = tidy(() => noGrad(() => correct.add(countCorrect(net.forward(x), y))));
          correct.dispose();
          correct = keep(next);
          n += x.shape[0];
        }
        return n ? (await correct.item()) / n : NaN;
      } finally {
        correct.dispose();
      }
    });
  return await (mode === "train" ? preservingBuffers(net, pass) : pass());
}

/**
 * The predicted class of each image (argmax of the logits), in eval mode, without
 * gradients. `images` is `[N, 1, 28, 28]`; returns N class indices.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Sequential, Tensor } from "../../mod.ts";
 * import { predict } from "../../train.ts";
 * const net = new Sequential(new nn.Flatten());
 * const x = Tensor.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], [2, 10]);
 * assert.deepEqual(await predict(net, x), [2, 9]);
 * ```
 */
export function predict(net: Module, images: Tensor): Promise<number[]> {
  return withMode(net, false, async () => {
    using logits = tidy(() => noGrad(() => net.forward(images)));
    const v = await logits.toArray();
    const [n, k] = [logits.shape[0], logits.numel / logits.shape[0]];
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (v[i * k + j] > v[i * k + best]) best = j;
      out.push(best);
    }
    return out;
  });
}
