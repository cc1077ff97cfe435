/**
 * Shapes, strides and broadcasting, on plain arrays of numbers.
 *
 * @module
 */

/** A tensor shape: sizes of each dimension, outermost first. */
export type Shape = readonly number[];

/** The highest rank bnlab's generic kernels handle. */
export const MAX_RANK = 8;

/** Number of elements of a shape (1 for a scalar `[]`). */
export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-contiguous) strides of a shape, in elements. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * `values` followed by `pad` up to `n` entries: sizes or strides of up to n dimensions as a
 * kernel's fixed-size uniform array takes them (unused sizes 1, unused strides 0).
 */
export function padTo(values: readonly number[], n: number, pad: number): number[] {
  if (values.length > n) throw new Error(`${values.length} values do not fit ${n} entries`);
  return [...values, ...new Array<number>(n - values.length).fill(pad)];
}

/** Formats a shape as `[2, 3]` for error messages. */
export function fmt(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** Throws unless `shape` is a list of non-negative integers of rank <= {@link MAX_RANK}. */
export function checkShape(shape: Shape, what = "shape"): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(
      `${what} must be a list of non-negative integers, got ${JSON.stringify(shape)}`,
    );
  }
  if (shape.length > MAX_RANK) {
    throw new Error(
      `${what} ${fmt(shape)} has rank ${shape.length}; bnlab supports up to ${MAX_RANK}`,
    );
  }
}

/** The broadcast shape of `a` and `b` (NumPy/PyTorch rules), or a clear error. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(
        `Shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast: dimension ${i} is ${da} vs ${db}`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Strides that read a tensor of `shape` as if it had the (larger) broadcast shape `to`:
 * broadcast dimensions get stride 0.
 */
export function broadcastStrides(shape: Shape, to: Shape): number[] {
  const s = stridesOf(shape);
  const off = to.length - shape.length;
  return to.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : s[i - off]));
}

/** Normalises a dims argument (negative dims, undefined = all) to sorted unique dims. */
export function normDims(dims: number | readonly number[] | undefined, rank: number): number[] {
  const list = dims === undefined
    ? [...Array(rank).keys()]
    : typeof dims === "number"
    ? [dims]
    : dims;
  const out = new Set<number>();
  for (const d of list) {
    const k = d < 0 ? d + rank : d;
    if (!Number.isInteger(k) || k < 0 || k >= rank) {
      throw new Error(`Dimension ${d} is out of range for a tensor of rank ${rank}`);
    }
    out.add(k);
  }
  return [...out].sort((x, y) => x - y);
}

/** Resolves a reshape target with at most one `-1` against `size` elements. */
export function resolveShape(shape: Shape, size: number, from: Shape): number[] {
  const neg = shape.filter((d) => d === -1).length;
  if (neg > 1) throw new Error(`reshape: only one dimension can be -1, got ${fmt(shape)}`);
  const known = numel(shape.map((d) => (d === -1 ? 1 : d)));
  const out = shape.map((d) => (d === -1 ? (known === 0 ? 0 : size / known) : d));
  if (numel(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view ${fmt(from)} (${size} elements) as ${fmt(shape)}`);
  }
  return out;
}
