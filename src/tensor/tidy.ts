/**
 * Scoped disposal: {@link tidy} disposes every tensor created inside a function except
 * what it returns, so a training step frees its intermediates without bookkeeping.
 *
 * A tensor that the autograd graph of a returned result still needs is only given up,
 * not freed: its memory stays until `backward()` has run through the op that saved it.
 * So `tidy(() => w.mul(w).mul(w))` can be differentiated after the scope.
 *
 * @module
 */
import { addAfterWait } from "../gpu/queue.ts";

/**
 * Who disposed something, for later error messages: the text, or a function that makes it
 * when a message needs it (tidy() names the line that opened its scope, from a stack trace
 * it formats only then: formatting it at every scope cost ~0.3 ms of a LeNet step).
 */
export type DisposeReason = string | (() => string);

/** Anything that holds GPU memory; `reason` says who disposed it, for error messages. */
export interface Disposable {
  /** Frees it; `reason` names who did, for later error messages. */
  dispose(reason?: DisposeReason): void;
}

interface Scope {
  tensors: Set<Disposable>;
  /** Where the scope was opened, captured lazily (an Error's stack). */
  site: Error;
}

const scopes: Scope[] = [];
// After a host wait no tidy() can be running: a scope still open was left by an interrupt.
addAfterWait(() => {
  if (scopes.length) resetScopesAfterInterrupt();
});

/**
 * Forgets the scopes that an interrupted run left open (an interrupt skips `tidy`'s
 * `finally`); their tensors are freed when garbage-collected. Only for a caller that runs
 * between two synchronous runs (a timer), where no `tidy` can legitimately be open.
 */
export function resetScopesAfterInterrupt(): void {
  scopes.length = 0;
}

/** Called by every new tensor: it belongs to the innermost open scope, if any. */
export function track(t: Disposable): void {
  scopes.at(-1)?.tensors.add(t);
}

/**
 * Removes `t` from all open scopes, so it outlives them (e.g. a parameter's `.grad`, or
 * a value a step updates in place of the previous one). The caller then owns it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keep, Tensor, tidy } from "../../mod.ts";
 * let kept: Tensor | undefined;
 * tidy(() => {
 *   kept = keep(Tensor.ones([2]));
 *   Tensor.zeros([2]); // freed when the scope ends
 * });
 * assert.deepEqual(Array.from(await kept!.toArray()), [1, 1]);
 * ```
 */
export function keep<T extends Disposable>(t: T): T {
  for (const s of scopes) s.tensors.delete(t);
  return t;
}

function collect(value: unknown, into: Set<unknown>): void {
  if (value === null || typeof value !== "object") return;
  if (into.has(value)) return;
  into.add(value);
  if (Array.isArray(value)) { for (const v of value) collect(v, into); }
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, into);
  }
}

/** The first stack frame outside bnlab's tensor module: where the scope was opened. */
function where(site: Error): string {
  const frames = (site.stack ?? "").split("\n").slice(1).map((l) => l.trim());
  const outside = frames.find((f) => !f.includes("/src/tensor/"));
  return outside ? outside.replace(/^at /, "") : "an unknown place";
}

/**
 * Runs `fn` and disposes every tensor it created, except those reachable from its
 * result (a tensor, or arrays/plain objects of tensors). Synchronous only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tensor, tidy } from "../../mod.ts";
 * const x = Tensor.from([1, 2, 3]);
 * const y = tidy(() => x.mul(2).add(1)); // the intermediate x*2 is freed
 * assert.deepEqual(Array.from(await y.toArray()), [3, 5, 7]);
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope: Scope = { tensors: new Set(), site: new Error() };
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new Error(
        "tidy() takes a synchronous function: await outside it, and tidy each synchronous step",
      );
    }
  } finally {
    scopes.pop();
  }
  const kept = new Set<unknown>();
  collect(result, kept);
  let text: string | undefined;
  const reason = () =>
    text ??= `tidy() when its scope ended (the scope opened at ${where(scope.site)})`;
  for (const t of scope.tensors) {
    if (kept.has(t)) {
      scopes.at(-1)?.tensors.add(t);
      continue;
    }
    t.dispose(reason);
  }
  return result;
}
