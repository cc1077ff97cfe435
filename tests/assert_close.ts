/**
 * Numeric assertions for tests: `assertClose` compares arrays elementwise with
 * |got - want| <= atol + rtol * |want| and reports the worst offenders by index.
 *
 * @module
 */

/** Tolerances for {@link assertClose}. */
export interface Tolerance {
  atol?: number;
  rtol?: number;
}

/** Throws unless every element satisfies |got - want| <= atol + rtol * |want| (NaN must match NaN). */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-5 }: Tolerance = {},
  what = "values",
): void {
  if (got.length !== want.length) {
    throw new Error(`${what}: length ${got.length} != expected ${want.length}`);
  }
  const bad: [number, number, number, number][] = []; // index, got, want, excess
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    const err = Math.abs(g - w);
    const tol = atol + rtol * Math.abs(w);
    if (!(err <= tol)) bad.push([i, g, w, Number.isNaN(err) ? Infinity : err / tol]);
  }
  if (bad.length) {
    bad.sort((a, b) => b[3] - a[3]);
    const lines = bad.slice(0, 5).map(([i, g, w, x]) =>
      `  [${i}] got ${g}, want ${w} (error ${x.toFixed(1)}x tolerance)`
    );
    throw new Error(
      `${what}: ${bad.length} of ${got.length} elements differ beyond atol=${atol}, rtol=${rtol}; worst:\n${
        lines.join("\n")
      }`,
    );
  }
}
