/**
 * The training loop of the lecture: d2l's `train_ch6`, with the host waits taken out.
 *
 * Each step is one GPU submission (forward, loss, backward, SGD update, and the running
 * sums of loss and correct predictions), with no readback inside: the sums stay on the
 * GPU and are read a few times per epoch (`updatesPerEpoch`, for progress and curves) and
 * at its end. On llvmpipe a readback costs ~11 ms, about a tenth of a step. Every reading
 * is checked: a loss that is no longer finite stops training with a {@link DivergenceError}.
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import { Conv2d } from "../nn/conv.ts";
import { Linear } from "../nn/linear.ts";
import { BatchNormBase } from "../nn/batch_norm.ts";
import { xavierUniform, zeros } from "../nn/init.ts";
import { CrossEntropyLoss } from "../nn/loss.ts";
import { SGD } from "../optim/sgd.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import type { LRScheduler } from "../optim/schedulers.ts";
import { countCorrect, TargetError } from "../ops/cross_entropy/cross_entropy.ts";
import { takeReadCheck, Tensor } from "../tensor/tensor.ts";
import { noGrad } from "../tensor/autograd.ts";
import { keep, tidy } from "../tensor/tidy.ts";
import { discardPending, flush } from "../gpu/queue.ts";
import { ProgressBar, type ProgressOptions } from "../progress/progress.ts";
import { evaluateAccuracy, type Loader, readScalars } from "./evaluate.ts";
import { interruptedCall, InterruptWatch } from "./interrupt_watch.ts";
import { firstNonFiniteLayer, readAll } from "./diagnose.ts";

/** A mid-epoch reading (`epoch` counts from 1; `fraction` of it done, in (0, 1]). */
export interface UpdateEvent {
  /** Epoch number, from 1. */
  epoch: number;
  /** Part of the epoch done, in (0, 1]. */
  fraction: number;
  /** Steps done in this epoch. */
  step: number;
  /** Mean training loss over the epoch so far. */
  loss: number;
  /** Training accuracy over the epoch so far (training mode, as the steps saw it). */
  trainAcc: number;
  /** Mean training loss over the steps since the previous reading (the last window). */
  windowLoss: number;
  /** Training accuracy over the steps since the previous reading. */
  windowAcc: number;
}

/** The end of an epoch. */
export interface EpochEvent {
  /** Epoch number, from 1. */
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
  /** The learning rate this epoch trained with (before the scheduler's step, if any). */
  lr: number;
}

/** One optimizer step, for {@link FitOptions.onStep}: its tensors live until the hook returns. */
export interface StepEvent {
  /** Epoch number, from 1. */
  epoch: number;
  /** Step within the epoch, from 1. */
  step: number;
  /** Steps done since the start of this `fit` history (across calls that continue it). */
  globalStep: number;
  /** The batch's images. */
  x: Tensor;
  /** The batch's labels. */
  y: Tensor;
  /** The batch's logits (detached). */
  logits: Tensor;
  /** The batch's mean loss, a 0-d tensor (detached; read it back only rarely). */
  loss: Tensor;
}

/** Where and why a {@link fit} stopped before its last epoch's end. */
export interface Stop {
  /**
   * `"aborted"`: the {@link FitOptions.signal} was aborted. `"interrupted"`: a notebook's
   * Kernel > Interrupt stopped it (see {@link FitInterruptedError}).
   */
  reason: "aborted" | "interrupted";
  /** The epoch it stopped in, from 1 (an epoch without its {@link EpochEvent}). */
  epoch: number;
  /** Steps of that epoch that ran to their end (the model holds the weights after the last). */
  step: number;
}

/** Everything {@link fit} reported, in order. */
export interface History {
  /** Mid-epoch readings. */
  updates: UpdateEvent[];
  /** End-of-epoch readings. */
  epochs: EpochEvent[];
  /** Set when the last `fit` on this history stopped early (see {@link FitOptions.signal}). */
  stopped?: Stop;
}

/** Options of {@link fit}. */
export interface FitOptions {
  /** Passes over the training set. */
  epochs: number;
  /** SGD learning rate (the lecture: 1.0 with BN, 0.9 without). Ignored with `optimizer`. */
  lr?: number;
  /** SGD momentum. Default 0 (the book's plain SGD). Ignored with `optimizer`. */
  momentum?: number;
  /** L2 weight decay. Default 0. Ignored with `optimizer`. */
  weightDecay?: number;
  /**
   * An optimizer to step (`SGD`, `Adam`, `AdamW`: any {@link Optimizer}), instead of a
   * fresh `SGD` (its state, such as momentum buffers, carries over between calls). The
   * caller owns it.
   */
  optimizer?: Optimizer;
  /**
   * A learning-rate scheduler of `optimizer`, stepped once after each epoch's training
   * steps and test pass, before {@link FitOptions.onEpoch} (so a checkpoint written there
   * holds the next epoch's rate), as PyTorch's `scheduler.step()` once per epoch. Needs
   * `optimizer`.
   */
  scheduler?: LRScheduler;
  /**
   * `"xavier"`: re-initialise first, as the book's `train_ch6` does (see
   * {@link initXavier}). Default `"none"`: train the weights as they are, so a loaded
   * checkpoint or an earlier `fit` is continued, never silently undone.
   */
  init?: "xavier" | "none";
  /** Seed of the Xavier initialisation. Default 0. */
  seed?: number;
  /**
   * Continue this history: the epochs are numbered after its last one, each gets the
   * next epoch's shuffle, and the readings are appended to it (it is also returned).
   */
  history?: History;
  /** Readbacks of the running loss/accuracy per epoch (the last at its end). Default 5. */
  updatesPerEpoch?: number;
  /** Called (and awaited) at each readback. */
  onUpdate?: (e: UpdateEvent) => unknown;
  /** Called (and awaited) after each epoch's test pass. */
  onEpoch?: (e: EpochEvent) => unknown;
  /**
   * Called after every optimizer step, inside the step, with no readback: for captures
   * that stay on the GPU (`keep()` what must outlive the step). Awaited if it returns a
   * promise, which costs a host wait per step: avoid that.
   */
  onStep?: (e: StepEvent) => unknown;
  /** A progress bar per epoch on stderr (or with these options). Default false. */
  progress?: boolean | ProgressOptions;
  /**
   * Stops training when aborted: `fit` returns at the next step boundary (after the step
   * that is running, and after a callback that is running), with the model holding the
   * weights of the last finished step and `history.stopped` saying where. The stopped
   * epoch gets a last reading of its running loss, and no test pass.
   */
  signal?: AbortSignal;
}

/** Why a loss stopped being finite: see {@link DivergenceError.diagnosis}. */
export type DivergenceCause =
  | { kind: "data"; firstStep: number }
  | { kind: "diverged"; layer: string | null };

/**
 * A notebook's Kernel > Interrupt stopped a running {@link fit} (Deno's kernel with
 * `"interrupt_mode": "message"`; see `interrupt_watch.ts`). The model holds the weights
 * after the last step that finished (`history.stopped`); the half-done step's GPU work was
 * dropped, and the library is ready for the next cell.
 */
export class FitInterruptedError extends Error {
  /** The readings so far, `stopped` saying where. */
  readonly history: History;
  /**
   * The history, whose `stopped` names the last step that finished; `cause`, the error that
   * the interrupt surfaced as, if it surfaced as one (see `interruptedCall`).
   */
  constructor(history: History, cause?: unknown) {
    const s = history.stopped!;
    super(
      `fit was interrupted in epoch ${s.epoch}, after step ${s.step}: the model holds the ` +
        "weights after that step, and the readings so far are in this error's history",
      cause === undefined ? undefined : { cause },
    );
    this.name = "FitInterruptedError";
    this.history = history;
  }
}

/**
 * The training loss stopped being a finite number: the run diverged (the learning rate
 * is too large for this model, or the data holds NaN). Training stops at the reading that
 * saw it; the model's weights are then not to be trusted.
 */
export class DivergenceError extends Error {
  /** Epoch of the reading that saw the non-finite loss, from 1. */
  readonly epoch: number;
  /** Step within that epoch at that reading. */
  readonly step: number;
  /** The last step at which the loss was read finite (0: never, in this epoch). */
  readonly lastFiniteStep: number;
  /** The loss read: NaN or an infinity. */
  readonly loss: number;
  /**
   * What `fit` found when it stopped: `"data"`, the loss was not finite from the first step
   * while the weights were finite (the inputs hold NaN or infinities, not the learning rate's
   * fault); `"diverged"`, the weights grew until they overflowed (`layer`: the first layer,
   * in module order, with a non-finite weight or statistic). Unknown when constructed bare.
   */
  readonly diagnosis?: DivergenceCause;
  /** The epoch, steps, loss and cause in the message. */
  constructor(
    epoch: number,
    step: number,
    lastFiniteStep: number,
    loss: number,
    cause?: DivergenceCause,
  ) {
    const where = `the training loss is ${loss} at epoch ${epoch}, step ${step}` +
      (lastFiniteStep ? ` (finite at step ${lastFiniteStep})` : "");
    super(
      cause?.kind === "data"
        ? `training stopped: ${where}, not finite from step ${cause.firstStep} of the run, ` +
          "when every weight was still finite: the training data holds NaN or infinite " +
          "values (or values whose square overflows float32); check the inputs (the " +
          "learning rate is not the cause)"
        : `training diverged: ${where}; lower the learning rate` +
          (cause?.layer ? ` (the first layer to go non-finite: ${cause.layer})` : ""),
    );
    this.name = "DivergenceError";
    this.epoch = epoch;
    this.step = step;
    this.lastFiniteStep = lastFiniteStep;
    this.loss = loss;
    this.diagnosis = cause;
  }
}

/**
 * Re-initialises `net` as d2l's `init_weights` does: Xavier-uniform weights of every
 * Linear and Conv2d (`U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`), biases zero,
 * everything else (normalization layers) left as it is. Layer `i` (in module order)
 * draws from seed `seed + i`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lenet } from "../../mod.ts";
 * import { initXavier } from "../../train.ts";
 * const net = lenet();
 * initXavier(net, 0);
 * const w = await net[0].stateDict()["weight"].toArray(); // Conv2d(1, 6, 5)
 * const a = Math.sqrt(6 / (25 + 150));
 * assert.ok(w.every((v) => Math.abs(v) <= a));
 * ```
 */
export function initXavier(net: Module, seed = 0): void {
  let i = 0;
  for (const m of net.modules()) {
    if (m instanceof Linear || m instanceof Conv2d) {
      xavierUniform(m.weight, { seed: seed + i++ });
      if (m.bias) zeros(m.bias);
    }
  }
}

/** Examples per epoch: the loader's own count if it has one, else batches x batch size. */
function examplesPerEpoch(loader: Loader, batchSize: number): number {
  return loader.n ?? loader.length * batchSize;
}

/** Refuses, before any work, a loader whose last batch batch norm cannot normalize. */
function checkLoneLastBatch(net: Module, loader: Loader): void {
  const { n, batchSize, dropLast } = loader;
  if (n === undefined || batchSize === undefined || dropLast || n % batchSize !== 1) return;
  if (!net.modules().some((m) => m instanceof BatchNormBase && m.training)) return;
  throw new Error(
    `fit: the training loader's last batch holds 1 example (${n} examples, batch size ` +
      `${batchSize}), and batch normalization cannot train on a batch of one ("Expected more ` +
      'than 1 value per channel"). Create the loader with dropLast: true (or change the batch ' +
      "size or the number of examples)",
  );
}

/**
 * An epoch's running sums, kept on the GPU (the loss summed over examples, and the count
 * of correct predictions) and read back only at readings, with what a reading reports:
 * the means so far and over the window since the previous reading.
 */
class EpochSums {
  #loss = keep(Tensor.zeros([]));
  #correct = keep(Tensor.zeros([]));
  /** Examples and steps so far. */
  n = 0;
  step = 0;
  /** The values at the previous reading. */
  #prev = { loss: 0, correct: 0, n: 0, step: 0 };

  /** Adds one step's mean loss (a 0-d tensor) and its correct count over `b` examples. */
  add(loss: Tensor, correct: Tensor, b: number): void {
    const [l, c] = tidy(() =>
      noGrad(() => [this.#loss.add(loss.detach().mul(b)), this.#correct.add(correct)])
    );
    this.#loss.dispose();
    this.#correct.dispose();
    [this.#loss, this.#correct] = [keep(l), keep(c)];
    this.n += b;
    this.step++;
  }

  /** Whether a reading was taken at the current step. */
  get readNow(): boolean {
    return this.#prev.step === this.step;
  }

  /** Reads the sums back (one host wait): the epoch so far, and the window since the last read. */
  async read(): Promise<{ loss: number; acc: number; windowLoss: number; windowAcc: number }> {
    const [l, c] = await readScalars([this.#loss, this.#correct]);
    const prev = this.#prev, dn = this.n - prev.n;
    this.#prev = { loss: l, correct: c, n: this.n, step: this.step };
    return {
      loss: l / this.n,
      acc: c / this.n,
      windowLoss: (l - prev.loss) / dn,
      windowAcc: (c - prev.correct) / dn,
    };
  }

  /** The step of the previous reading (0 if none). */
  get lastRead(): number {
    return this.#prev.step;
  }

  /** Frees the GPU sums. */
  dispose(): void {
    this.#loss.dispose();
    this.#correct.dispose();
  }
}

/**
 * Trains `net` with SGD (or `opts.optimizer`, stepped by an optional per-epoch
 * `opts.scheduler`) on cross-entropy, as d2l's `train_ch6`: per epoch, the training loss
 * and accuracy averaged over the epoch in training mode, then the test accuracy in eval
 * mode, and examples per second. Returns the history of readings.
 *
 * The same seeds (init, loader shuffle) on the same adapter give the same curve. A run
 * resumes exactly: epoch `e` gets the loader's order `batches(e - 1)` and the history's
 * next number, so a `fit` given the saved weights, optimizer and scheduler state and
 * history (see `saveTrainingState`) goes on as the uninterrupted run would. Callbacks
 * are awaited, so an error in one (a failed save) rejects `fit`. A non-finite training
 * loss stops training with a {@link DivergenceError}. An aborted `signal` stops it at the
 * next step boundary (`history.stopped`); in a notebook, Kernel > Interrupt rejects it at
 * once with a {@link FitInterruptedError}, the library ready for the next cell.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lenet, Tensor } from "../../mod.ts";
 * import { fit } from "../../train.ts";
 * const x = Tensor.rand([8, 1, 28, 28], { seed: 1 });
 * const y = Tensor.from([0, 1, 2, 3, 4, 5, 6, 7]);
 * const loader = { length: 1, batches: () => [{ x, y }] };
 * const net = lenet();
 * const h = await fit(net, loader, loader, { epochs: 2, lr: 0.5, updatesPerEpoch: 1 });
 * assert.equal(h.epochs.length, 2);
 * assert.deepEqual(h.updates.map((u) => [u.epoch, u.fraction]), [[1, 1], [2, 1]]);
 * await fit(net, loader, loader, { epochs: 1, lr: 0.5, history: h }); // goes on
 * assert.deepEqual(h.epochs.map((e) => e.epoch), [1, 2, 3]);
 * ```
 */
export async function fit(
  net: Module,
  trainLoader: Loader,
  testLoader: Loader,
  opts: FitOptions,
): Promise<History> {
  const { epochs, lr, momentum = 0, weightDecay = 0, init = "none", seed = 0 } = opts;
  const { updatesPerEpoch = 5, onUpdate, onEpoch, onStep, progress = false } = opts;
  if (!(Number.isInteger(epochs) && epochs >= 0)) {
    throw new Error(`fit: epochs must be a whole number >= 0, got ${epochs}`);
  }
  if (!opts.optimizer && !(typeof lr === "number" && lr > 0 && Number.isFinite(lr))) {
    throw new Error(`fit: lr must be a finite number > 0, got ${lr}`);
  }
  if (!(Number.isInteger(updatesPerEpoch) && updatesPerEpoch >= 1)) {
    throw new Error(`fit: updatesPerEpoch must be a whole number >= 1, got ${updatesPerEpoch}`);
  }
  if (init !== "xavier" && init !== "none") {
    throw new Error(`fit: init must be "xavier" or "none", got ${JSON.stringify(init)}`);
  }
  if (trainLoader.length === 0) {
    throw new Error("fit: the training loader has no batches; give it at least one example");
  }
  if (opts.scheduler && opts.scheduler.optimizer !== opts.optimizer) {
    throw new Error(
      "fit: the scheduler drives another optimizer than opts.optimizer: pass the optimizer " +
        "the scheduler was made with as opts.optimizer",
    );
  }
  checkLoneLastBatch(net, trainLoader);
  if (init === "xavier") initXavier(net, seed);
  const sgd = opts.optimizer ?? new SGD(net.parameters(), { lr: lr!, momentum, weightDecay });
  const lossFn = new CrossEntropyLoss();
  const history: History = opts.history ?? { updates: [], epochs: [] };
  const first = (history.epochs.at(-1)?.epoch ?? 0) + 1;
  let globalStep = 0;
  let runSteps = 0; // steps started by this call (globalStep counts only with onStep)
  const steps = trainLoader.length;
  // Readings at evenly spaced steps, the last one at the end of the epoch.
  const readAt = new Set<number>();
  for (let k = 1; k <= updatesPerEpoch; k++) {
    readAt.add(Math.max(1, Math.round((k * steps) / updatesPerEpoch)));
  }

  delete history.stopped;
  let done = { epoch: first, step: 0 }; // the last step that ran to its end
  let interrupt!: (e: Error) => void;
  const interrupted = new Promise<never>((_, reject) => interrupt = reject);
  // An interrupted step is undone: what it encoded is dropped, so the weights are those after
  // `done`. Each step is submitted at its end, and what came before fit is submitted here, so
  // the batch then holds the interrupted step's work and nothing else.
  const watch = new InterruptWatch(() => {
    discardPending();
    history.stopped = { reason: "interrupted", ...done };
    interrupt(new FitInterruptedError(history));
  });
  if (watch.watching) flush();
  const run = async () => {
    try {
      for (let epoch = first; epoch < first + epochs && !history.stopped; epoch++) {
        if (opts.signal?.aborted) history.stopped = { reason: "aborted", epoch, step: 0 };
        else await trainEpoch(epoch);
      }
    } catch (e) {
      // An interrupt can surface as a WebGPU call's TypeError instead of killing the step.
      if (!watch.watching || !interruptedCall(e)) throw e;
      discardPending();
      history.stopped = { reason: "interrupted", ...done };
      throw new FitInterruptedError(history, e);
    } finally {
      if (!opts.optimizer) sgd.dispose(); // momentum buffers
    }
  };
  try {
    await Promise.race([run(), interrupted]);
  } finally {
    watch.stop();
  }
  return history;

  /** The error for a non-finite reading, from the window's per-step losses and checks. */
  async function whyNotFinite(
    epoch: number,
    step: number,
    lastFinite: number,
    loss: number,
    window: { loss: Tensor; check: Tensor | undefined; globalStep: number; classes: number }[],
  ): Promise<Error> {
    const checks = window.filter((w) => w.check);
    const values = await readAll([...window.map((w) => w.loss), ...checks.map((w) => w.check!)]);
    const bad = checks.findIndex((_, i) => values[window.length + i][0] >= 0);
    if (bad >= 0) {
      const [row, target] = values[window.length + bad];
      const e = new TargetError(row, target, checks[bad].classes);
      const first = checks[bad].globalStep - (runSteps - step); // its step in this epoch
      e.message = `fit, the batch of epoch ${epoch}, step ${first}: ${e.message}`;
      return e;
    }
    // With finite weights and finite data, the first step's loss is finite: a non-finite one
    // there is the data's. Later, weights that grew (even while still finite) can overflow it.
    const firstNonFinite = window.find((_, i) => !Number.isFinite(values[i][0]));
    if (firstNonFinite?.globalStep === 1) {
      return new DivergenceError(epoch, step, lastFinite, loss, { kind: "data", firstStep: 1 });
    }
    const layer = await firstNonFiniteLayer(net);
    return new DivergenceError(epoch, step, lastFinite, loss, { kind: "diverged", layer });
  }

  async function trainEpoch(epoch: number): Promise<void> {
    net.train();
    const sums = new EpochSums();
    let last = { loss: NaN, trainAcc: NaN };
    let bar: ProgressBar | undefined;
    const start = performance.now();
    // Each step's loss and crossEntropy's target check since the last reading: read only
    // when a reading is not finite, to tell bad labels, bad data and divergence apart.
    let window: { loss: Tensor; check: Tensor | undefined; globalStep: number; classes: number }[] =
      [];
    const clearWindow = () => {
      for (const w of window) w.loss.dispose(), w.check?.dispose();
      window = [];
    };
    const read = async () => {
      const lastFinite = sums.lastRead;
      const r = await watch.wait(sums.read(), true);
      if (!Number.isFinite(r.loss)) {
        throw await watch.wait(whyNotFinite(epoch, sums.step, lastFinite, r.loss, window), true);
      }
      clearWindow();
      last = { loss: r.loss, trainAcc: r.acc };
      const u: UpdateEvent = {
        epoch,
        fraction: Math.min(1, sums.step / steps),
        step: sums.step,
        ...last,
        windowLoss: r.windowLoss,
        windowAcc: r.windowAcc,
      };
      history.updates.push(u);
      await watch.wait(onUpdate?.(u), false);
    };
    try {
      const batches = trainLoader.batches(epoch - 1);
      const it = Symbol.asyncIterator in batches
        ? batches[Symbol.asyncIterator]()
        : batches[Symbol.iterator]();
      try {
        while (true) {
          const next = await watch.wait(it.next(), false);
          if (next.done) break;
          const { x, y } = next.value;
          const b = x.shape[0];
          bar ??= progress
            ? new ProgressBar(examplesPerEpoch(trainLoader, b), {
              label: `epoch ${epoch}/${first + epochs - 1}`,
              unit: "ex",
              ...(progress === true ? {} : progress),
            })
            : undefined;
          let hook: unknown;
          tidy(() => {
            sgd.zeroGrad();
            const logits = net.forward(x);
            const loss = lossFn.forward(logits, y);
            window.push({
              loss: keep(loss.detach()),
              check: takeReadCheck(loss)?.data, // kept already
              globalStep: ++runSteps,
              classes: logits.shape[1],
            });
            loss.backward();
            sgd.step();
            sums.add(loss, noGrad(() => countCorrect(logits, y)), b);
            hook = onStep?.({
              epoch,
              step: sums.step,
              globalStep: ++globalStep,
              x,
              y,
              logits: logits.detach(),
              loss: loss.detach(),
            });
          });
          await watch.wait(hook, false);
          flush(); // one submission per step
          done = { epoch, step: sums.step };
          if (opts.signal?.aborted) {
            if (!sums.readNow) await read();
            history.stopped = { reason: "aborted", epoch, step: sums.step };
            return;
          }
          if (readAt.has(sums.step) || sums.step === steps) await read();
          bar?.update(sums.n, Number.isNaN(last.loss) ? undefined : `loss ${last.loss.toFixed(3)}`);
        }
      } finally {
        await watch.wait(it.return?.(), false); // as for await does on leaving early
      }
      if (sums.step === 0) {
        throw new Error(`fit: the training loader yielded no batches in epoch ${epoch}`);
      }
      if (!sums.readNow) await read(); // a loader shorter than it said: read what there is
      bar?.done(`loss ${last.loss.toFixed(3)} train acc ${last.trainAcc.toFixed(3)}`);
    } finally {
      sums.dispose();
      clearWindow();
      bar?.stop();
    }
    const seconds = (performance.now() - start) / 1000;
    const lr = sgd.lr;
    const testAcc = await watch.wait(evaluateAccuracy(net, testLoader), false);
    const e: EpochEvent = {
      epoch,
      loss: last.loss,
      trainAcc: last.trainAcc,
      testAcc,
      seconds,
      examplesPerSec: sums.n / seconds,
      lr,
    };
    opts.scheduler?.step();
    history.epochs.push(e);
    await watch.wait(onEpoch?.(e), false);
  }
}
