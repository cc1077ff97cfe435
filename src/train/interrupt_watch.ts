/**
 * Notices that a running {@link fit} was killed by a notebook's Kernel > Interrupt, so that
 * the cell answers at once instead of when V8 happens to collect its promise.
 *
 * Deno's Jupyter kernel (with `"interrupt_mode": "message"`) interrupts a cell with V8's
 * TerminateExecution: the JavaScript running at that moment stops, `finally` blocks skipped,
 * and the async function it belonged to never settles. The cell's `await fit(...)` then
 * waits until the garbage collector notices the dead promise ("Promise was collected"),
 * 20-30 s in our runs. An interrupt can also land as fit resumes from a GPU wait, before its
 * own code runs again. One that arrives while the kernel runs no JavaScript at all (fit
 * waiting for a reading: a few milliseconds, `updatesPerEpoch` times an epoch) is beyond any
 * watch: Deno 2.9.6 kills the first callback that runs after it (a resolved wait, a timer),
 * and the kernel then runs no more JavaScript, timers included, so the cell never answers
 * (seen with a bare timer or file read, without bnlab); Kernel > Restart is the way out.
 *
 * A watch tells a killed run from a live one with a timer. A live `fit` is between awaits
 * whenever a timer runs, since its steps are synchronous: if the timer finds it marked as
 * running, it was killed mid-step. While it waits for the GPU, the timer waits for the GPU
 * to be idle and then a little longer: a live run has moved on by then; a run whose
 * continuation was killed has not. Waits on anything else (callbacks, the data loader) are
 * not judged. When it sees a kill, the watch puts the library's synchronous state back
 * (the half-built command batch, open `tidy` scopes, gradient mode) and calls `onKilled`.
 *
 * It watches only inside Deno's Jupyter kernel: elsewhere nothing kills a run halfway (the
 * trainer turns Ctrl-C into an AbortSignal), and a watch that cannot help must not risk
 * stopping a live run.
 *
 * @module
 */
import { deviceSync } from "../gpu/device.ts";
import { recoverInterrupted } from "../gpu/queue.ts";
import { resetScopesAfterInterrupt } from "../tensor/tidy.ts";
import { resetGradModeAfterInterrupt } from "../tensor/autograd.ts";
import { jupyter } from "../notebook/print.ts";

/** How often the watch looks, in ms. */
const PERIOD = 250;
/**
 * How long after the GPU went idle a live run has surely taken its result (a readback
 * resolves within milliseconds of it): 4x margin over a busy 2-core machine's worst seen.
 */
const SETTLE = 1000;

/**
 * Whether `e` is how Deno's WebGPU reports an interrupt that stopped one of its calls while
 * the call converted an argument (a sequence, a dictionary): instead of ending the run, the
 * call throws "TypeError: Failed to execute '...' on 'GPU...': ... can not be converted to
 * ..." (seen in 1 of 8 interrupt-test runs, from `queue.submit([commandBuffer])`). bnlab's
 * arguments always convert, so inside a watched run such an error is the interrupt; the
 * library's state is whole after it, as after any exception.
 */
export function interruptedCall(e: unknown): boolean {
  return e instanceof TypeError &&
    /^Failed to execute '[^']*' on 'GPU\w*'.*can not be converted to/s.test(e.message);
}

/**
 * Watches one run (see the module doc): every await of the run goes through
 * {@link InterruptWatch.wait}; {@link InterruptWatch.stop} ends the watch.
 */
export class InterruptWatch {
  #running = true;
  #gpu = false;
  #progress = 0;
  /** When the GPU probe in progress began (0: none); an interrupt may strand it. */
  #probing = 0;
  #timer?: ReturnType<typeof setInterval>;
  #stopped = false;
  #onKilled: () => void;

  /**
   * Starts watching (in a Jupyter kernel, or anywhere with `always`); `onKilled` is called
   * once if the run is seen killed.
   */
  constructor(onKilled: () => void, always = false) {
    this.#onKilled = onKilled;
    if (!always && !jupyter()) {
      this.#stopped = true;
      return;
    }
    this.#timer = setInterval(() => void this.#check(), PERIOD);
    // Never keeps a process alive by itself.
    const deno = (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno;
    deno?.unrefTimer?.(this.#timer as unknown as number);
  }

  /** Awaits `p` as the run's (`gpu`: a wait for GPU work, which the watch may judge). */
  async wait<T>(p: T | Promise<T>, gpu: boolean): Promise<T> {
    this.#running = false;
    this.#gpu = gpu;
    this.#progress++;
    try {
      return await p;
    } finally {
      this.#running = true;
      this.#progress++;
    }
  }

  /** Whether it watches (in a Jupyter kernel, or with `always`), not yet stopped. */
  get watching(): boolean {
    return !this.#stopped;
  }

  /** Ends the watch (the run ended). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  async #check(): Promise<void> {
    if (this.#stopped) return;
    if (this.#running) return this.#killed(); // no live step spans a timer
    if (!this.#gpu) return;
    // A probe is under way, unless it is older than it can take: then the interrupt killed
    // it (its `finally` skipped), and another starts.
    if (this.#probing && performance.now() - this.#probing < 4 * SETTLE) return;
    const seen = this.#progress;
    this.#probing = performance.now();
    try {
      await deviceSync().queue.onSubmittedWorkDone();
      await new Promise((r) => setTimeout(r, SETTLE));
    } finally {
      this.#probing = 0;
    }
    if (this.#progress === seen && !this.#running && !this.#stopped) this.#killed();
  }

  #killed(): void {
    this.stop();
    recoverInterrupted();
    resetScopesAfterInterrupt();
    resetGradModeAfterInterrupt();
    this.#onKilled();
  }
}
