/**
 * Timing for GPU benchmarks on an adapter where every host wait costs ~11 ms: encode `reps`
 * calls, wait once, and subtract the cost of a bare wait measured right after.
 *
 * @module
 */
import { sync } from "../src/gpu/queue.ts";

/** Milliseconds per call of `fn` (best of `trials`): `reps` calls and one wait, minus a bare wait. */
export async function msPerCall(
  fn: () => void,
  { reps = 10, trials = 3 }: { reps?: number; trials?: number } = {},
): Promise<number> {
  let best = Infinity;
  for (let t = 0; t < trials; t++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    await sync();
    const t1 = performance.now();
    await sync();
    best = Math.min(best, (t1 - t0 - (performance.now() - t1)) / reps);
  }
  return best;
}
