/**
 * Module trees printed as PyTorch prints them (`repr(module)`): each module as
 * `Name(extra)` with its `extraRepr()`, children indented two spaces per level as
 * `(name): ...`, and values written as Python writes them (`1e-05`, `True`, `None`,
 * `(5, 5)`), so that `String(net)` reads as `print(net)` does in PyTorch.
 *
 * @module
 */

/** What the tree needs of a module (structural: this file imports no module class). */
export interface Printable {
  /** The arguments PyTorch shows inside the parentheses (`extra_repr`). */
  extraRepr(): string;
  /** Direct children with their names. */
  namedChildren(): [string, Printable][];
}

/**
 * A number as Python's `repr(float(x))` writes it: `0.1`, `1.0`, `1e-05`, `1e+16`, `nan`,
 * `inf`. For the float arguments of layers (eps, momentum, p).
 */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  // the shortest digits that round-trip (as Python's repr), then Python's layout:
  // positional for exponents in [-4, 16), else d.ddde-XX with at least two exponent digits
  const [mant, e] = x.toExponential().split("e");
  const exp = Number(e);
  if (exp < -4 || exp >= 16) {
    return `${mant}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const s = x.toFixed(Math.max(0, mant.replace(/^-?\d\.?/, "").length - exp));
  return s.includes(".") ? s : `${s}.0`;
}

/**
 * A value as Python's `repr` writes it: integers plain, other numbers by {@link pyFloat},
 * booleans `True`/`False`, null `None`, arrays as tuples (`(5, 5)`, `(120,)`).
 */
export function py(v: number | boolean | null | readonly number[]): string {
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : pyFloat(v);
  return v.length === 1 ? `(${py(v[0])},)` : `(${v.map(py).join(", ")})`;
}

/** A [h, w] pair as PyTorch prints a pooling argument: the int when both agree, else the tuple. */
export function pyPair([h, w]: readonly [number, number]): string {
  return h === w ? py(h) : py([h, w]);
}

/**
 * The tree of `m` as PyTorch's `Module.__repr__` writes it: one line `Name(extra)` for a
 * module without children, else `Name(` then each child as `(name): ` and its own tree,
 * indented two spaces, and `)`.
 */
export function moduleTree(m: Printable): string {
  const extra = m.extraRepr();
  const lines = extra ? extra.split("\n") : [];
  for (const [name, child] of m.namedChildren()) {
    lines.push(`(${name}): ${moduleTree(child).split("\n").join("\n  ")}`);
  }
  const name = m.constructor.name;
  if (lines.length === 0) return `${name}()`;
  if (lines.length === 1 && m.namedChildren().length === 0) return `${name}(${lines[0]})`;
  return `${name}(\n  ${lines.join("\n  ")}\n)`;
}

/** `61706` as `61,706`. */
export function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
