/**
 * What `deno task train`'s flags imply, checked before any data is loaded: a combination
 * that would fail at the first step, after an epoch, or silently do something else than
 * asked is a usage error naming the flags and what to pass instead.
 *
 * @module
 */

/** Examples per ghost batch with `--norm ghost` (LeNet's default `virtualBatchSize`). */
export const GHOST_BATCH = 32;

/** The largest `--seed`: the generators take 32-bit seeds. */
export const MAX_SEED = 2 ** 32 - 1;

/** The flags that {@link checkFlagImplications} reads. */
export interface ImpliedFlags {
  norm: string;
  lr: number;
  batchSize: number;
  seed: number;
  limit?: number;
}

/**
 * Throws `makeError(message)` on flags that cannot work together: a seed beyond 2^32 - 1
 * (it would wrap to another seed), a learning rate that is 0 or infinite in float32 (the
 * weights' precision), batch norm (`batch`, `ghost`) with batches or ghost batches of one
 * example, or a `--limit` whose only batch would be left out for that reason.
 */
export function checkFlagImplications(f: ImpliedFlags, makeError: (m: string) => Error): void {
  if (f.seed > MAX_SEED) {
    throw makeError(
      `--seed must be a whole number from 0 to ${MAX_SEED} (the generators take 32-bit seeds; ` +
        `${f.seed} would wrap to ${f.seed % 2 ** 32}), got ${f.seed}`,
    );
  }
  const lr32 = Math.fround(f.lr);
  if (lr32 === 0 || !Number.isFinite(lr32)) {
    throw makeError(
      `--lr ${f.lr} is ${lr32} in float32, the precision the weights are updated in: pass a ` +
        "learning rate from 1.5e-45 to 3.4e38 (in practice about 1e-4 to 10)",
    );
  }
  const bn = f.norm === "batch" || f.norm === "ghost";
  if (bn && f.batchSize === 1) {
    throw makeError(
      `--batch-size 1 with --norm ${f.norm}: batch normalization needs at least 2 examples ` +
        "per batch in training mode; pass --batch-size 2 or more, or --norm layer, group or none",
    );
  }
  if (f.norm === "ghost" && f.batchSize % GHOST_BATCH === 1) {
    throw makeError(
      `--batch-size ${f.batchSize} with --norm ghost: each batch splits into ghost batches ` +
        `of ${GHOST_BATCH} and a last one of a single example, which batch norm cannot ` +
        `normalize; pass a --batch-size that is not 1 more than a multiple of ${GHOST_BATCH}`,
    );
  }
  // A limit smaller than a batch is the whole epoch: one that must be left out leaves nothing.
  if (bn && f.limit !== undefined && f.limit < f.batchSize) {
    if (lastBatchNote(f.limit, f.batchSize, f.norm)) {
      throw makeError(
        `--limit ${f.limit} with --norm ${f.norm} and --batch-size ${f.batchSize}: the only ` +
          "batch would end in a batch or ghost batch of one example, which batch norm cannot " +
          `normalize, leaving nothing to train on; pass --limit ${f.limit + 1}`,
      );
    }
  }
}

/**
 * Why the last batch of an epoch (of `n` examples in batches of `batchSize`) must be left
 * out with this `norm`, or undefined: batch norm cannot normalize a batch of one example,
 * nor ghost batch norm a last ghost batch of one.
 */
export function lastBatchNote(n: number, batchSize: number, norm: string): string | undefined {
  const last = n % batchSize;
  const what = last === 1
    ? "a last batch of one, which batch norm cannot normalize in training mode"
    : norm === "ghost" && last % GHOST_BATCH === 1
    ? `a last batch of ${last}, whose last ghost batch (of ${GHOST_BATCH}) holds one example, ` +
      "which batch norm cannot normalize in training mode"
    : undefined;
  if (!what || (norm !== "batch" && norm !== "ghost")) return undefined;
  return `${n} examples in batches of ${batchSize} leave ${what}; each epoch trains on ${
    n - last
  } examples (different ones are left out each epoch, by the shuffle)`;
}
