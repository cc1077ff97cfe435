/**
 * Float64 CPU reference for the elementwise ops, written as naive loops so that it can
 * be read and trusted on its own: forward values with NumPy/PyTorch broadcasting, and
 * analytic gradients. It shares no code with the GPU path (not even the broadcasting
 * rules in `tensor/shape.ts`), so a test comparing the two checks both.
 *
 * Gradients follow llm.c's convention for a reference: `dout` is the upstream gradient of
 * the output; the returned `dinp` arrays are fresh (they overwrite, nothing accumulates).
 * Where an input was broadcast, its gradient is the sum of `dout` over the broadcast
 * positions.
 *
 * @module
 */

/** A float64 array with a shape (row-major, contiguous), on the host. */
export interface RefArray {
  /** Sizes of each dimension, outermost first. */
  shape: number[];
  /** The values, row-major. */
  data: Float64Array;
}

/** Binary ops with broadcasting, as `Tensor.add/sub/mul/div/pow` with a tensor operand. */
export type RefBinaryOp = "add" | "sub" | "mul" | "div" | "pow";
/** Unary ops, as the `Tensor` methods of the same names. */
export type RefUnaryOp = "square" | "sqrt" | "exp" | "log" | "sigmoid" | "relu" | "neg";

/**
 * Wraps data and shape into a {@link RefArray}, copying to float64.
 */
export function refArray(data: ArrayLike<number>, shape: readonly number[]): RefArray {
  let n = 1;
  for (const d of shape) n *= d;
  if (n !== data.length) {
    throw new Error(`refArray: ${data.length} values do not fill shape [${shape.join(", ")}]`);
  }
  return { shape: [...shape], data: Float64Array.from(data) };
}

/**
 * The broadcast shape of `a` and `b`: align on the right, each pair of sizes must be equal
 * or contain a 1, the result takes the larger.
 */
export function refBroadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`Shapes [${a.join(", ")}] and [${b.join(", ")}] cannot be broadcast`);
    }
    out.push(Math.max(da, db));
  }
  return out;
}

/** Index into an input of `shape` of the output element at multi-index `idx`. */
function sourceIndex(idx: number[], shape: readonly number[]): number {
  const off = idx.length - shape.length;
  let k = 0;
  for (let d = 0; d < shape.length; d++) {
    k = k * shape[d] + (shape[d] === 1 ? 0 : idx[d + off]);
  }
  return k;
}

/** Calls `fn(i, idx)` for every output element i in row-major order. */
function forEachIndex(shape: readonly number[], fn: (i: number, idx: number[]) => void): void {
  let n = 1;
  for (const d of shape) n *= d;
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    fn(i, idx);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/** x ** y with PyTorch's conventions (a negative base needs an integer exponent). */
function power(x: number, y: number): number {
  return y === 0 ? 1 : Math.pow(x, y);
}

function applyBinary(op: RefBinaryOp, x: number, y: number): number {
  switch (op) {
    case "add":
      return x + y;
    case "sub":
      return x - y;
    case "mul":
      return x * y;
    case "div":
      return x / y;
    case "pow":
      return power(x, y);
  }
}

/**
 * out = a OP b, broadcasting.
 */
export function refBinary(op: RefBinaryOp, a: RefArray, b: RefArray): RefArray {
  const shape = refBroadcastShape(a.shape, b.shape);
  const out = new Float64Array(shape.reduce((p, d) => p * d, 1));
  forEachIndex(shape, (i, idx) => {
    out[i] = applyBinary(op, a.data[sourceIndex(idx, a.shape)], b.data[sourceIndex(idx, b.shape)]);
  });
  return { shape, data: out };
}

/**
 * Gradients of `refBinary(op, a, b)` given `dout` (shape of the output):
 * add: (1, 1); sub: (1, -1); mul: (b, a); div: (1/b, -a/b^2); pow: (b a^(b-1), a^b ln a),
 * each times dout and summed over the positions where that input was broadcast.
 */
export function refBinaryBackward(
  op: RefBinaryOp,
  a: RefArray,
  b: RefArray,
  dout: RefArray,
): [RefArray, RefArray] {
  const shape = refBroadcastShape(a.shape, b.shape);
  const da = new Float64Array(a.data.length);
  const db = new Float64Array(b.data.length);
  forEachIndex(shape, (i, idx) => {
    const ia = sourceIndex(idx, a.shape), ib = sourceIndex(idx, b.shape);
    const x = a.data[ia], y = b.data[ib], g = dout.data[i];
    let gx: number, gy: number;
    switch (op) {
      case "add":
        gx = 1, gy = 1;
        break;
      case "sub":
        gx = 1, gy = -1;
        break;
      case "mul":
        gx = y, gy = x;
        break;
      case "div":
        gx = 1 / y, gy = -x / (y * y);
        break;
      case "pow":
        gx = y * power(x, y - 1), gy = power(x, y) * Math.log(x);
        break;
    }
    da[ia] += g * gx;
    db[ib] += g * gy;
  });
  return [{ shape: [...a.shape], data: da }, { shape: [...b.shape], data: db }];
}

/**
 * out = x OP c for a scalar c (the `Tensor` methods called with a number).
 */
export function refScalar(op: RefBinaryOp, x: RefArray, c: number): RefArray {
  return { shape: [...x.shape], data: x.data.map((v) => applyBinary(op, v, c)) };
}

/**
 * Gradient of `refScalar(op, x, c)`: add/sub 1, mul c, div 1/c, pow c x^(c-1); times dout.
 */
export function refScalarBackward(
  op: RefBinaryOp,
  x: RefArray,
  c: number,
  dout: RefArray,
): RefArray {
  const dinp = new Float64Array(x.data.length);
  for (let i = 0; i < dinp.length; i++) {
    const v = x.data[i];
    const d = op === "add" || op === "sub"
      ? 1
      : op === "mul"
      ? c
      : op === "div"
      ? 1 / c
      : c * power(v, c - 1);
    dinp[i] = dout.data[i] * d;
  }
  return { shape: [...x.shape], data: dinp };
}

function applyUnary(op: RefUnaryOp, v: number): number {
  switch (op) {
    case "square":
      return v * v;
    case "sqrt":
      return Math.sqrt(v);
    case "exp":
      return Math.exp(v);
    case "log":
      return Math.log(v);
    case "sigmoid":
      return 1 / (1 + Math.exp(-v));
    case "relu":
      return v > 0 ? v : 0;
    case "neg":
      return -v;
  }
}

/** Derivative of the unary op at v. relu'(0) = 0, as in PyTorch. */
function unaryDerivative(op: RefUnaryOp, v: number): number {
  switch (op) {
    case "square":
      return 2 * v;
    case "sqrt":
      return 0.5 / Math.sqrt(v);
    case "exp":
      return Math.exp(v);
    case "log":
      return 1 / v;
    case "sigmoid": {
      const s = 1 / (1 + Math.exp(-v));
      return s * (1 - s);
    }
    case "relu":
      return v > 0 ? 1 : 0;
    case "neg":
      return -1;
  }
}

/**
 * out = OP(x), elementwise.
 */
export function refUnary(op: RefUnaryOp, x: RefArray): RefArray {
  return { shape: [...x.shape], data: x.data.map((v) => applyUnary(op, v)) };
}

/**
 * Gradient of `refUnary(op, x)`: dinp = dout * OP'(x).
 */
export function refUnaryBackward(op: RefUnaryOp, x: RefArray, dout: RefArray): RefArray {
  const dinp = new Float64Array(x.data.length);
  for (let i = 0; i < dinp.length; i++) dinp[i] = dout.data[i] * unaryDerivative(op, x.data[i]);
  return { shape: [...x.shape], data: dinp };
}
