/**
 * Ctrl-C in the trainer: the first SIGINT asks the run to stop at the next step boundary
 * (the checkpoint of the last finished epoch is already on disk: the trainer writes one after
 * every epoch), the second ends the process at once. Exit status 130 either way (128 +
 * SIGINT, as shells report a process stopped by Ctrl-C).
 *
 * @module
 */

/** The exit status of a run stopped by Ctrl-C: 128 + SIGINT's number 2. */
export const EXIT_INTERRUPTED = 130;

/** What {@link stopOnCtrlC} returns: the signal to hand to `fit`; dispose to stop listening. */
export interface CtrlC extends Disposable {
  /** Aborted at the first Ctrl-C. */
  readonly signal: AbortSignal;
}

/**
 * Listens for SIGINT while the returned object lives: the first aborts its `signal` and says
 * on stderr that the run stops after the current step; the second exits with
 * {@link EXIT_INTERRUPTED} at once.
 */
export function stopOnCtrlC(): CtrlC {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) Deno.exit(EXIT_INTERRUPTED);
    console.error(
      "\ninterrupted: stopping after the current step (Ctrl-C again to quit at once)",
    );
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  return {
    signal: controller.signal,
    [Symbol.dispose]: () => Deno.removeSignalListener("SIGINT", onSigint),
  };
}
