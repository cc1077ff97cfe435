/**
 * Timing for GPU benchmarks on an adapter where every host wait costs ~11 ms: encode `reps`
 * calls, wait once, and subtract the cost of a bare wait measured right after (the least of
 * three: one wait delayed by the OS subtracted as it came once made a 1.6 ms matmul read
 * 0.12 ms, 131 GFLOP/s, and with it every share of that round in conv2d_bench).
 *
 * @module
 */
import { sync } from "../src/gpu/queue.ts";

/**
 * Milliseconds per call of `fn` (best of `trials`): `reps` calls and one wait, minus the
 * least of three bare waits.
 */
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
    let bare = Infinity;
    for (let k = 0; k < 3; k++) {
      const s = performance.now();
      await sync();
      bare = Math.min(bare, performance.now() - s);
    }
    best = Math.min(best, (t1 - t0 - bare) / reps);
  }
  return best;
}
