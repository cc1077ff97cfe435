/**
 * What built a model, as plain data: `lenet()` records its options here, `saveCheckpoint`
 * writes them into the checkpoint's metadata (`architecture`), `loadCheckpoint` refuses a
 * checkpoint whose architecture differs from the model's (same names and shapes do not make
 * the same function: max against average pooling, sigmoid against ReLU), and
 * `loadLeNetCheckpoint` builds the model a checkpoint describes.
 *
 * @module
 */
import type { Module } from "../nn/module.ts";

/** A model's architecture: its builder's name and options, JSON values only. */
export type Architecture =
  & { readonly model: string }
  & Readonly<
    Record<string, string | number | boolean | null>
  >;

const recorded = new WeakMap<Module, Architecture>();

/** Records what built `net` (a builder such as `lenet` calls this); returns `net`. */
export function recordArchitecture<M extends Module>(net: M, arch: Architecture): M {
  recorded.set(net, Object.freeze({ ...arch }));
  return net;
}

/**
 * What built `net`, if its builder recorded it (`lenet()` does); undefined for a model put
 * together by hand.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { architectureOf, lenet, nn } from "../../mod.ts";
 * assert.equal(architectureOf(lenet({ pool: "avg" }))?.pool, "avg");
 * assert.equal(architectureOf(new nn.Linear(2, 3)), undefined);
 * ```
 */
export function architectureOf(net: Module): Architecture | undefined {
  return recorded.get(net);
}

/** Two architectures as `key: a vs b` for each key where they differ ("" if none). */
export function architectureDiff(a: Architecture, b: Architecture): string {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => a[k] !== b[k])
    .map((k) => `${k}: ${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}`).join(", ");
}
