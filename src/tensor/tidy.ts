/**
 * Scoped disposal: {@link tidy} disposes every tensor created inside a function except
 * what it returns, so a training step frees its intermediates without bookkeeping.
 *
 * @module
 */

/** Anything that holds GPU memory. */
export interface Disposable {
  dispose(): void;
}

const scopes: Set<Disposable>[] = [];

/** Called by every new tensor: it belongs to the innermost open scope, if any. */
export function track(t: Disposable): void {
  scopes.at(-1)?.add(t);
}

/** Removes `t` from all open scopes: it outlives them (e.g. a parameter's `.grad`). */
export function keep<T extends Disposable>(t: T): T {
  for (const s of scopes) s.delete(t);
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

/**
 * Runs `fn` and disposes every tensor it created, except those reachable from its
 * result (a tensor, or arrays/plain objects of tensors). Synchronous only.
 *
 * @example
 * ```ts
 * import { Tensor, tidy } from "../../mod.ts";
 * const x = Tensor.from([1, 2, 3]);
 * const y = tidy(() => x.mul(2).add(1)); // the intermediate x*2 is freed
 * console.log(await y.toArray()); // Float32Array [3, 5, 7]
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new Error("tidy() takes a synchronous function");
  } finally {
    scopes.pop();
  }
  const kept = new Set<unknown>();
  collect(result, kept);
  for (const t of scope) {
    if (kept.has(t)) scopes.at(-1)?.add(t);
    else t.dispose();
  }
  return result;
}
