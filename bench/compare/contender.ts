/**
 * What every library in the comparison provides for one row: a way to run the operation
 * (or training step) once without waiting, a host wait, and the outputs of a first run for
 * validation; and how two sets of outputs are compared.
 *
 * @module
 */

/** Named output arrays of one run, in PyTorch's layouts (NCHW, [O, C, KH, KW], ...). */
export type Outputs = Record<string, Float32Array>;

/** One library doing one row's operation. */
export interface Contender {
  /**
   * Runs the operation once from the initial state and returns its outputs (for a training
   * step: the loss and each state entry's update). Call it first, once.
   */
  validate(): Promise<Outputs>;
  /** Runs (or, on a GPU, enqueues) the operation once more; no host wait. */
  run(): void;
  /** Waits until all work from `run` is finished: one host wait on a GPU, nothing on a CPU. */
  wait(): Promise<void>;
  /** Runs the op once more and returns how many kernels it launched (bnlab and tfjs). */
  launches?(): number | Promise<number>;
}

/** How far one output is from the one it should match. */
export interface Mismatch {
  /** Output name. */
  key: string;
  /** max |got - want| / max |want|: the worst error relative to the output's scale. */
  error: number;
  /** Flat index of the worst element, with both values there. */
  at: number;
  got: number;
  want: number;
}

/**
 * A row's outputs are compared with this floor on each output's scale, as a fraction of the
 * largest magnitude among all of them: an output that is zero in exact arithmetic (the bias
 * of a layer followed by batch norm gets no gradient, so its update is rounding noise) is
 * judged against the row's scale instead of its own.
 */
export const SCALE_FLOOR = 1e-3;

/**
 * Compares `got` with `want` output by output; the error of each is scaled by the largest
 * |want| of that output (at least {@link SCALE_FLOOR} of the largest |want| of the row), so
 * sums with cancellation do not fail on elements that are tiny next to their neighbours.
 * Returns the worst output, or a missing/mis-sized one as error Infinity. NaN counts as
 * an error.
 */
export function worstMismatch(got: Outputs, want: Outputs): Mismatch {
  const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const floor = SCALE_FLOOR * Math.max(...Object.values(want).map(maxAbs));
  let worst: Mismatch = { key: "", error: 0, at: -1, got: 0, want: 0 };
  for (const [key, w] of Object.entries(want)) {
    const g = got[key];
    if (!g || g.length !== w.length) {
      return { key, error: Infinity, at: -1, got: g?.length ?? 0, want: w.length };
    }
    const scale = Math.max(maxAbs(w), floor) || 1;
    for (let i = 0; i < w.length; i++) {
      const e = Math.abs(g[i] - w[i]) / scale;
      if (Number.isNaN(e)) return { key, error: NaN, at: i, got: g[i], want: w[i] };
      if (e > worst.error) worst = { key, error: e, at: i, got: g[i], want: w[i] };
    }
  }
  return worst;
}

/** One line on a mismatch: `dweight off by 1.2e-2 of its scale (at 17: 3.1 vs 2.9)`. */
export function describeMismatch(m: Mismatch): string {
  if (m.error === Infinity) return `${m.key} missing or of the wrong size (${m.got} vs ${m.want})`;
  return `${m.key} off by ${m.error.toExponential(1)} of its scale (at ${m.at}: ${
    m.got.toPrecision(5)
  } vs ${m.want.toPrecision(5)})`;
}
