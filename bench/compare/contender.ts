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
 * Compares `got` with `want` output by output; the error of each is scaled by the largest
 * |want| of that output (an absolute tolerance proportional to the data, so sums with
 * cancellation do not fail on elements that are tiny next to their neighbours). Returns the
 * worst output, or a missing/mis-sized one as error Infinity.
 */
export function worstMismatch(got: Outputs, want: Outputs): Mismatch {
  let worst: Mismatch = { key: "", error: 0, at: -1, got: 0, want: 0 };
  for (const [key, w] of Object.entries(want)) {
    const g = got[key];
    if (!g || g.length !== w.length) {
      return { key, error: Infinity, at: -1, got: g?.length ?? 0, want: w.length };
    }
    let scale = 0;
    for (const v of w) scale = Math.max(scale, Math.abs(v));
    scale ||= 1;
    for (let i = 0; i < w.length; i++) {
      const e = Math.abs(g[i] - w[i]) / scale;
      if (!(e <= worst.error)) worst = { key, error: e, at: i, got: g[i], want: w[i] };
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
