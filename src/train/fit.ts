/**
 * The training loop of the lecture: d2l's `train_ch6`, with the host waits taken out.
 *
 * Each step is one GPU submission (forward, loss, backward, SGD update, and the running
 * sums of loss and correct predictions), with no readback inside: the sums stay on the
 * GPU and are read a few times per epoch (`updatesPerEpoch`, for progress and curves) and
 * at its end. On llvmpipe a readback costs ~11 ms, about a tenth of a step.
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import { Conv2d } from "../nn/conv.ts";
import { Linear } from "../nn/linear.ts";
import { xavierUniform, zeros } from "../nn/init.ts";
import { CrossEntropyLoss } from "../nn/loss.ts";
import { SGD } from "../optim/sgd.ts";
import { countCorrect } from "../ops/cross_entropy/cross_entropy.ts";
import { Tensor } from "../tensor/tensor.ts";
import { noGrad } from "../tensor/autograd.ts";
import { tidy } from "../tensor/tidy.ts";
import { copyBuffer, flush, readBuffer } from "../gpu/queue.ts";
import { allocBuffer, releaseBuffer } from "../gpu/buffer_pool.ts";
import { ProgressBar, type ProgressOptions } from "../cli/progress.ts";
import { evaluateAccuracy, type Loader } from "./evaluate.ts";

export { evaluateAccuracy, type Loader, predict } from "./evaluate.ts";

/** A mid-epoch reading (`epoch` counts from 1; `fraction` of it done, in (0, 1]). */
export interface UpdateEvent {
  epoch: number;
  fraction: number;
  /** Mean training loss over the epoch so far. */
  loss: number;
  /** Training accuracy over the epoch so far (training mode, as the steps saw it). */
  trainAcc: number;
}

/** The end of an epoch. */
export interface EpochEvent {
  epoch: number;
  /** Mean training loss over the epoch. */
  loss: number;
  /** Training accuracy over the epoch, in training mode. */
  trainAcc: number;
  /** Test accuracy after the epoch, in eval mode. */
  testAcc: number;
  /** Seconds spent training in this epoch (the test pass not included). */
  seconds: number;
  /** Training examples per second in this epoch. */
  examplesPerSec: number;
}

/** Everything {@link fit} reported, in order. */
export interface History {
  updates: UpdateEvent[];
  epochs: EpochEvent[];
}

/** Options of {@link fit}. */
export interface FitOptions {
  /** Passes over the training set. */
  epochs: number;
  /** SGD learning rate (the lecture: 1.0 with BN, 0.9 without). */
  lr: number;
  /** SGD momentum. Default 0 (the book's plain SGD). */
  momentum?: number;
  /** L2 weight decay. Default 0. */
  weightDecay?: number;
  /**
   * `"xavier"` (default, the book's `init_weights`): Xavier-uniform weights of every Linear
   * and Conv2d, their biases zero, normalization layers left at their defaults (gamma 1,
   * beta 0). `"none"` keeps the current weights (e.g. to continue from a checkpoint).
   */
  init?: "xavier" | "none";
  /** Seed of the Xavier initialisation. Default 0. */
  seed?: number;
  /** Readbacks of the running loss/accuracy per epoch (the last at its end). Default 5. */
  updatesPerEpoch?: number;
  /** Called at each readback. */
  onUpdate?: (e: UpdateEvent) => void;
  /** Called after each epoch's test pass. */
  onEpoch?: (e: EpochEvent) => void;
  /** A progress bar per epoch on stderr (or with these options). Default false. */
  progress?: boolean | ProgressOptions;
}

/**
 * Re-initialises `net` as d2l's `init_weights` does: Xavier-uniform weights of every
 * Linear and Conv2d (`U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`), biases zero.
 * Layer `i` (in module order) draws from seed `seed + i`.
 */
export function initXavier(net: Module, seed = 0): void {
  let i = 0;
  const visit = (m: Module) => {
    if (m instanceof Linear || m instanceof Conv2d) {
      xavierUniform(m.weight, { seed: seed + i++ });
      if (m.bias) zeros(m.bias);
    }
    for (const [, c] of m.namedChildren()) visit(c);
  };
  visit(net);
}

/** Examples per epoch: the loader's own count if it has one, else batches x batch size. */
function examplesPerEpoch(loader: Loader, batchSize: number): number {
  return loader.n ?? loader.length * batchSize;
}

/** Reads several one-element tensors back with a single host wait. */
async function readScalars(ts: Tensor[]): Promise<number[]> {
  const staging = allocBuffer(ts.length * 4, "fit readback");
  try {
    ts.forEach((t, i) => copyBuffer(t.buffer, staging, 4, 0, 4 * i));
    return [...new Float32Array(await readBuffer(staging, ts.length * 4))];
  } finally {
    releaseBuffer(staging);
  }
}

/**
 * Trains `net` with SGD on cross-entropy, as d2l's `train_ch6`: per epoch, the training
 * loss and accuracy averaged over the epoch in training mode, then the test accuracy in
 * eval mode, and examples per second. Returns the history of readings.
 *
 * The same seeds (init, loader shuffle) on the same adapter give the same curve.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fit } from "./fit.ts";
 * import { lenet } from "../models/lenet.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { getDevice } from "../gpu/device.ts";
 * await getDevice();
 * const x = Tensor.rand([8, 1, 28, 28], { seed: 1 });
 * const y = Tensor.from([0, 1, 2, 3, 4, 5, 6, 7]);
 * const loader = { length: 1, batches: () => [{ x: x.detach(), y: y.detach() }] };
 * const net = lenet();
 * const h = await fit(net, loader, loader, { epochs: 2, lr: 0.5, updatesPerEpoch: 1 });
 * assert.equal(h.epochs.length, 2);
 * assert.deepEqual(h.updates.map((u) => [u.epoch, u.fraction]), [[1, 1], [2, 1]]);
 * ```
 */
export async function fit(
  net: Module,
  trainLoader: Loader,
  testLoader: Loader,
  opts: FitOptions,
): Promise<History> {
  const { epochs, lr, momentum = 0, weightDecay = 0, init = "xavier", seed = 0 } = opts;
  const { updatesPerEpoch = 5, onUpdate, onEpoch, progress = false } = opts;
  if (!(Number.isInteger(epochs) && epochs >= 0)) {
    throw new Error(`fit: epochs must be a whole number >= 0, got ${epochs}`);
  }
  if (!(lr > 0)) throw new Error(`fit: lr must be a positive number, got ${lr}`);
  if (init === "xavier") initXavier(net, seed);
  const sgd = new SGD(net.parameters(), { lr, momentum, weightDecay });
  const lossFn = new CrossEntropyLoss();
  const history: History = { updates: [], epochs: [] };
  const steps = trainLoader.length;
  // Readings at evenly spaced steps, the last one at the end of the epoch.
  const readAt = new Set<number>();
  for (let k = 1; k <= Math.max(1, updatesPerEpoch); k++) {
    readAt.add(Math.max(1, Math.round((k * steps) / Math.max(1, updatesPerEpoch))));
  }

  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      await trainEpoch(epoch);
    }
  } finally {
    sgd.dispose(); // momentum buffers
  }
  return history;

  async function trainEpoch(epoch: number): Promise<void> {
    net.train();
    let lossSum = Tensor.zeros([]); // sum over examples of the loss
    let correct = Tensor.zeros([]); // correct predictions
    let n = 0;
    let step = 0;
    let last = { loss: NaN, trainAcc: NaN };
    let bar: ProgressBar | undefined;
    const start = performance.now();
    try {
      for await (const { x, y } of trainLoader.batches(epoch - 1)) {
        const b = x.shape[0];
        using _x = x, _y = y; // the loader hands over ownership of each batch
        if (progress && !bar) {
          bar = new ProgressBar(examplesPerEpoch(trainLoader, b), {
            label: `epoch ${epoch}/${epochs}`,
            unit: "ex",
            ...(progress === true ? {} : progress),
          });
        }
        const [nextLoss, nextCorrect] = tidy(() => {
          sgd.zeroGrad();
          const logits = net.forward(x);
          const loss = lossFn.forward(logits, y);
          loss.backward();
          sgd.step();
          return noGrad(() => [
            lossSum.add(loss.detach().mul(b)),
            correct.add(countCorrect(logits, y)),
          ]);
        });
        lossSum.dispose();
        correct.dispose();
        [lossSum, correct] = [nextLoss, nextCorrect];
        flush(); // one submission per step
        n += b;
        step++;
        if (readAt.has(step) || step === steps) {
          const [l, c] = await readScalars([lossSum, correct]);
          last = { loss: l / n, trainAcc: c / n };
          const u = { epoch, fraction: steps ? Math.min(1, step / steps) : 1, ...last };
          history.updates.push(u);
          onUpdate?.(u);
        }
        bar?.update(n, Number.isNaN(last.loss) ? undefined : `loss ${last.loss.toFixed(3)}`);
      }
      if (step !== steps && step > 0 && !readAt.has(step)) {
        // A loader shorter than it said: read what there is.
        const [l, c] = await readScalars([lossSum, correct]);
        last = { loss: l / n, trainAcc: c / n };
        const u = { epoch, fraction: 1, ...last };
        history.updates.push(u);
        onUpdate?.(u);
      }
    } finally {
      lossSum.dispose();
      correct.dispose();
    }
    const seconds = (performance.now() - start) / 1000;
    bar?.done(`loss ${last.loss.toFixed(3)} train acc ${last.trainAcc.toFixed(3)}`);
    const testAcc = await evaluateAccuracy(net, testLoader);
    const e: EpochEvent = {
      epoch,
      loss: last.loss,
      trainAcc: last.trainAcc,
      testAcc,
      seconds,
      examplesPerSec: n / seconds,
    };
    history.epochs.push(e);
    onEpoch?.(e);
  }
}
