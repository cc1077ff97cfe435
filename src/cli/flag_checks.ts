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

/** A learning-rate schedule as `--schedule` gives it, resolved (see {@link parseSchedule}). */
export type Schedule =
  | { kind: "none" }
  | { kind: "step"; stepSize: number; gamma: number }
  | { kind: "cosine"; tMax: number };

/**
 * Parses `--schedule`: `none`; `step:STEP_SIZE[:GAMMA]` (PyTorch's `StepLR`: the rate times
 * GAMMA, default 0.1, every STEP_SIZE epochs); `cosine[:T_MAX]` (`CosineAnnealingLR` down to
 * 0 over T_MAX epochs, default `epochs`). Returns the schedule and its full spelling (every
 * default written out, as a run records it); throws `makeError(message)` naming the text.
 */
export function parseSchedule(
  text: string,
  epochs: number,
  makeError: (m: string) => Error,
): { schedule: Schedule; text: string } {
  const [kind, ...rest] = text.split(":");
  const syntax = "none, step:STEP_SIZE[:GAMMA] or cosine[:T_MAX]";
  const whole = (v: string, what: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) {
      throw makeError(
        `--schedule ${text}: ${what} must be a whole number >= 1, got ${JSON.stringify(v)}`,
      );
    }
    return Number(v);
  };
  if (kind === "none" && rest.length === 0) return { schedule: { kind: "none" }, text: "none" };
  if (kind === "step" && (rest.length === 1 || rest.length === 2)) {
    const stepSize = whole(rest[0], "STEP_SIZE");
    const gamma = rest.length === 2 ? Number(rest[1]) : 0.1;
    if (
      rest.length === 2 && (!/^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(rest[1]) || !(gamma > 0))
    ) {
      throw makeError(
        `--schedule ${text}: GAMMA must be a number > 0 in decimal notation (the factor the ` +
          `rate is multiplied by), got ${JSON.stringify(rest[1])}`,
      );
    }
    return { schedule: { kind: "step", stepSize, gamma }, text: `step:${stepSize}:${gamma}` };
  }
  if (kind === "cosine" && rest.length <= 1) {
    const tMax = rest.length ? whole(rest[0], "T_MAX") : epochs;
    return { schedule: { kind: "cosine", tMax }, text: `cosine:${tMax}` };
  }
  throw makeError(`--schedule must be ${syntax}, got ${JSON.stringify(text)}`);
}

/** The optimizer flags that {@link checkOptimizerFlags} reads. */
export interface OptimizerFlags {
  optimizer: string;
  momentum: number;
  weightDecay: number;
}

/**
 * Throws `makeError(message)` on optimizer flags that cannot work as asked: `--momentum`
 * with Adam or AdamW (whose momentum is their first beta, 0.9), or a momentum outside
 * [0, 1) (1 or more makes the steps grow without bound); `given` names the flags that were
 * on the command line.
 */
export function checkOptimizerFlags(
  f: OptimizerFlags,
  given: ReadonlySet<string>,
  makeError: (m: string) => Error,
): void {
  if (f.optimizer !== "sgd" && given.has("momentum")) {
    throw makeError(
      `--momentum applies to --optimizer sgd; ${f.optimizer === "adam" ? "Adam" : "AdamW"}'s ` +
        "momentum is its first beta (0.9, as in PyTorch): leave --momentum out, or pass " +
        "--optimizer sgd",
    );
  }
  if (!(f.momentum >= 0 && f.momentum < 1)) {
    throw makeError(
      `--momentum must be from 0 to below 1 (1 or more makes the steps grow without bound), ` +
        `got ${f.momentum}`,
    );
  }
}
