/**
 * Sliding-window geometry shared by convolution and pooling: number-or-pair options, the
 * output size, and the error for a window that does not fit.
 *
 * @module
 */

/**
 * Normalizes a number-or-pair size option to [h, w], checking that both are integers >= min.
 */
export function pair(v: number | readonly [number, number], name: string, min: number): [
  number,
  number,
] {
  const [a, b] = typeof v === "number" ? [v, v] : v;
  if (![a, b].every((x) => Number.isInteger(x) && x >= min)) {
    throw new Error(
      `${name} must be an integer >= ${min} or a pair [h, w] of them, got ${JSON.stringify(v)}`,
    );
  }
  return [a, b];
}

/** A window sliding over [N, C, H, W]: kernel, stride and padding, and the output size. */
export interface Window {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  /** Output height and width: floor((H + 2 ph - kh) / sh) + 1, likewise OW. */
  oh: number;
  ow: number;
}

/**
 * The window of kernel `[kh, kw]` over `inp` (shape [N, C, H, W]) with the given stride and
 * padding, or an error naming `op` when the kernel is larger than the padded input.
 */
export function slidingWindow(
  op: string,
  shape: readonly number[],
  [kh, kw]: readonly [number, number],
  [sh, sw]: readonly [number, number],
  [ph, pw]: readonly [number, number],
): Window {
  const [n, c, h, w] = shape;
  if (h + 2 * ph < kh || w + 2 * pw < kw) {
    throw new Error(
      `${op}: kernel ${kh}x${kw} is larger than the padded input ${h + 2 * ph}x${w + 2 * pw} ` +
        `(input ${h}x${w}, padding [${ph}, ${pw}]); use a smaller kernel or more padding`,
    );
  }
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  return { n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow };
}
