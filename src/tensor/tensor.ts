/**
 * The GPU tensor: a float32 buffer on the WebGPU device, a shape, and a node in the
 * autograd graph, with its primitive ops (elementwise maths with broadcasting,
 * reductions, activations), each recording its gradient a few lines from its forward.
 *
 * Tensors are contiguous and row-major. `reshape` and `detach` share storage (a
 * reference-counted buffer); every op writes a fresh buffer from the pool.
 *
 * Ownership, in one rule: whoever created a tensor disposes it (`dispose()`, `using`, or
 * an enclosing {@link tidy}); a tensor garbage-collected undisposed gives its memory back
 * too, later. The autograd graph holds what its backward reads (see `autograd.ts`), so
 * disposing a tensor that a recorded op saved frees it only once `backward()` has run
 * through that op (or the graph's output is freed).
 *
 * @module
 */
import { releaseBuffer, uploadBuffer } from "../gpu/buffer_pool.ts";
import { allocBuffer } from "../gpu/buffer_pool.ts";
import { copyBuffer, readBuffer } from "../gpu/queue.ts";
import { deviceSync } from "../gpu/device.ts";
import {
  broadcastShapes,
  checkShape,
  fmt,
  normDims,
  numel,
  resolveShape,
  type Shape,
} from "./shape.ts";
import { rngFor } from "./random.ts";
import { checkFinite } from "./anomaly.ts";
import { type DisposeReason, keep, tidy, track } from "./tidy.ts";
import {
  backward as runBackward,
  type BackwardFn,
  type BackwardOptions,
  type Hold,
  type Holds,
  type Node,
  noGrad,
  record as recordNode,
  type Variable,
} from "./autograd.ts";
import {
  type BinaryOp,
  launchBinary,
  launchUnary,
  type Operand,
  type UnaryOp,
} from "../ops/elementwise/elementwise.ts";
import { launchReduce, type ReduceOp } from "../ops/reduce/reduce.ts";
import { launchActivation } from "../ops/activation/activation.ts";
import { linearSchedule, productAB, productABt, productAtB } from "../ops/linear/products.ts";
import { launchRandom } from "../ops/random/random.ts";

/** A reference-counted GPU buffer shared by a tensor and its views. */
class Storage {
  refs = 1;
  /** In-place writes so far (autograd refuses a backward over changed data). */
  version = 0;
  constructor(readonly buffer: GPUBuffer) {}
  release(): void {
    if (--this.refs === 0) releaseBuffer(this.buffer);
  }
}

/** What a garbage-collected tensor still owns: its storage and its node's holds. */
interface Remains {
  storage: Storage;
  holds: Holds<Tensor> | null;
}

const finalizer = new FinalizationRegistry<Remains>((r) => {
  r.storage.release();
  r.holds?.release();
});

/** Options of the tensor factories. */
export interface TensorOptions {
  /** Track operations on this tensor for {@link Tensor.backward}. Default false. */
  requiresGrad?: boolean;
}

/** Options of {@link Tensor.from}. */
export interface FromOptions extends TensorOptions {
  /** The shape of flat data; default: inferred from nested arrays, `[length]` for flat. */
  shape?: Shape;
}

/** Options of the random factories. */
export interface RandomOptions extends TensorOptions {
  /** Seed for this call; without it the global generator ({@link manualSeed}) is used. */
  seed?: number;
}

/** Options of {@link Tensor.rand}. */
export interface UniformOptions extends RandomOptions {
  /** Lower bound (inclusive). Default 0. */
  low?: number;
  /** Upper bound (exclusive). Default 1. */
  high?: number;
}

/** Options of {@link Tensor.var} and {@link Tensor.std}. */
export interface VarianceOptions {
  /** Keep the reduced dimensions with size 1. Default false. */
  keepdim?: boolean;
  /**
   * Divide by n - 1 (Bessel's correction, PyTorch's default) instead of n. Batch norm
   * normalizes with the biased variance (false) and tracks the unbiased one. Default true.
   */
  unbiased?: boolean;
}

/** Nested arrays of numbers, as accepted by {@link Tensor.from}. */
export type NestedArray = number | readonly NestedArray[];

/** Dimensions to reduce over: one, several, or all (undefined). */
export type Dims = number | readonly number[] | undefined;

/** The shape of nested arrays, checking that they are rectangular and hold numbers. */
function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  for (let d: NestedArray = data; Array.isArray(d); d = d[0]) shape.push(d.length);
  const check = (d: NestedArray, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof d !== "number") {
        throw new Error(
          `Tensor.from: expected a number at ${path || "the top"}, got ${
            Array.isArray(d) ? "an array" : JSON.stringify(d) ?? String(d)
          }: nested arrays must all have the same depth and hold numbers`,
        );
      }
      return;
    }
    if (!Array.isArray(d) || d.length !== shape[depth]) {
      throw new Error(
        `Tensor.from: ragged nested arrays: ${path || "the top"} has ${
          Array.isArray(d) ? `length ${d.length}` : "a number"
        } where the first element at this depth has length ${shape[depth]}; every row must ` +
          `have the same length (shape ${fmt(shape)})`,
      );
    }
    d.forEach((e, i) => check(e, depth + 1, `${path}[${i}]`));
  };
  check(data, 0, "");
  return shape;
}

function flatten(data: NestedArray | ArrayLike<number>): Float32Array {
  if (data instanceof Float32Array) return data;
  if (typeof data === "number") return Float32Array.of(data);
  if (Array.isArray(data)) return Float32Array.from((data as unknown[]).flat(Infinity) as number[]);
  return Float32Array.from(data as ArrayLike<number>);
}

/** A random call's seed: the given one, or the next draw of the global generator. */
function seedOf(opts: RandomOptions): number {
  return (opts.seed ?? rngFor().nextU32()) >>> 0;
}

let storageOf: (t: Tensor) => Storage;
let attachOf: (t: Tensor) => (node: Node<Tensor>, holds: Holds<Tensor>) => void;
let hold: Hold<Tensor>;

/**
 * A float32 tensor on the GPU, with autograd.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tensor } from "../../mod.ts";
 * const x = Tensor.from([[1, 2], [3, 4]], { requiresGrad: true });
 * const y = x.square().sum(); // 1 + 4 + 9 + 16
 * y.backward();
 * assert.equal(await y.item(), 30);
 * assert.deepEqual(Array.from(await x.grad!.toArray()), [2, 4, 6, 8]);
 * ```
 */
export class Tensor implements Variable<Tensor> {
  /** Sizes of each dimension. */
  readonly shape: readonly number[];
  /** Number of elements (PyTorch's `numel()`). */
  readonly numel: number;
  /** Whether gradients flow to this tensor. */
  requiresGrad: boolean;
  /** Accumulated gradient (leaf tensors with `requiresGrad`), after {@link backward}. */
  grad: Tensor | null = null;
  #storage: Storage | undefined;
  #node: Node<Tensor> | null = null;
  #holds = 0;
  #disposedBy: DisposeReason | undefined;

  static {
    storageOf = (t) => {
      if (!t.#storage) throw new Error(t.#disposedMessage());
      return t.#storage;
    };
    attachOf = (t) => (node, holds) => {
      t.#node = node;
      finalizer.unregister(t);
      finalizer.register(t, { storage: storageOf(t), holds }, t);
    };
    // A node reads t until the returned function runs: t's memory stays until then, even
    // if t is disposed meanwhile.
    hold = (t) => {
      storageOf(t); // refuses a freed tensor
      t.#holds++;
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        if (--t.#holds === 0 && t.#disposedBy !== undefined) t.#free();
      };
    };
  }

  /** Wraps a pooled buffer (internal: ops use {@link Tensor.empty}). */
  private constructor(buffer: GPUBuffer | Storage, shape: Shape, requiresGrad = false) {
    checkShape(shape);
    this.shape = Object.freeze([...shape]);
    this.numel = numel(shape);
    this.requiresGrad = requiresGrad;
    if (buffer instanceof Storage) {
      buffer.refs++;
      this.#storage = buffer;
    } else this.#storage = new Storage(buffer);
    finalizer.register(this, { storage: this.#storage, holds: null }, this);
    track(this);
  }

  /** An uninitialised tensor from the buffer pool, for kernels to write. */
  static empty(shape: Shape): Tensor {
    checkShape(shape);
    return new Tensor(allocBuffer(numel(shape) * 4), shape);
  }

  /**
   * A tensor holding `data`: nested arrays (shape inferred; they must be rectangular), or
   * flat data with a shape (`Tensor.from(flat, [2, 3])` or `{ shape }`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tensor } from "../../mod.ts";
   * const a = Tensor.from([[1, 2, 3], [4, 5, 6]]); // shape [2, 3]
   * const b = Tensor.from(new Float32Array(6), [3, 2]);
   * const w = Tensor.from([0.5], { requiresGrad: true });
   * assert.deepEqual([a.shape, b.shape, w.requiresGrad], [[2, 3], [3, 2], true]);
   * ```
   */
  static from(
    data: NestedArray | ArrayLike<number>,
    shapeOrOptions: Shape | FromOptions = {},
  ): Tensor {
    const opts: FromOptions = Array.isArray(shapeOrOptions)
      ? { shape: shapeOrOptions as Shape }
      : shapeOrOptions as FromOptions;
    const nested = typeof data === "number" || Array.isArray(data);
    // Infer (and check) the nested structure even when a shape is given.
    const inferred = typeof data === "number"
      ? []
      : Array.isArray(data)
      ? inferShape(data as NestedArray)
      : [(data as ArrayLike<number>).length];
    const flat = flatten(data);
    const s = opts.shape ?? inferred;
    checkShape(s);
    if (numel(s) !== flat.length) {
      throw new Error(
        `Tensor.from: ${flat.length} values do not fill shape ${fmt(s)} (${numel(s)} elements)` +
          (nested ? `; the data has shape ${fmt(inferred)}` : ""),
      );
    }
    return new Tensor(uploadBuffer(flat.length ? flat : new Float32Array(1)), s, opts.requiresGrad);
  }

  /** A tensor of `shape` filled with `value`. */
  static full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
    const t = Tensor.empty(shape);
    launchUnary("fill", value, null, t.#operand());
    t.requiresGrad = opts.requiresGrad ?? false;
    return t;
  }

  /** A tensor of zeros. */
  static zeros(shape: Shape, opts: TensorOptions = {}): Tensor {
    return Tensor.full(shape, 0, opts);
  }

  /** A tensor of ones. */
  static ones(shape: Shape, opts: TensorOptions = {}): Tensor {
    return Tensor.full(shape, 1, opts);
  }

  /**
   * Standard normal samples, made on the GPU by a counter-based generator: the same seed
   * gives the same numbers on every adapter (to the adapter's ln/cos precision, a few
   * ulps). Without `seed`, one is drawn from the global generator ({@link manualSeed}).
   */
  static randn(shape: Shape, opts: RandomOptions = {}): Tensor {
    const t = Tensor.empty(shape);
    launchRandom({ kind: "normal" }, seedOf(opts), t.buffer, t.numel);
    t.requiresGrad = opts.requiresGrad ?? false;
    return t;
  }

  /**
   * Uniform samples in [low, high), made on the GPU by a counter-based generator (24
   * random bits each, bit-identical on every adapter for [0, 1)); seeded as `randn`.
   */
  static rand(shape: Shape, opts: UniformOptions = {}): Tensor {
    const { low = 0, high = 1 } = opts;
    if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high)) {
      throw new Error(`Tensor.rand needs finite low <= high, got low ${low}, high ${high}`);
    }
    const t = Tensor.empty(shape);
    launchRandom({ kind: "uniform", low, high }, seedOf(opts), t.buffer, t.numel);
    t.requiresGrad = opts.requiresGrad ?? false;
    return t;
  }

  /**
   * The GPU buffer holding this tensor's data (throws once freed). For kernels: bnlab's
   * ops bind it; do not write it outside an op.
   */
  get buffer(): GPUBuffer {
    return storageOf(this).buffer;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Whether {@link dispose} has been called (its memory may still serve the graph). */
  get disposed(): boolean {
    return this.#disposedBy !== undefined;
  }

  /** The recorded op that produced this tensor (PyTorch's `grad_fn`); null for a leaf. */
  get gradFn(): Node<Tensor> | null {
    return this.#node;
  }

  /** How many in-place writes this tensor's data has seen. */
  get version(): number {
    return storageOf(this).version;
  }

  /** `[6, 24, 24] (op sigmoid)`: for messages. */
  describe(): string {
    return `${fmt(this.shape)}${this.#node ? ` (op ${this.#node.op})` : ""}`;
  }

  #disposedMessage(): string {
    const by = this.#disposedBy;
    const how = typeof by === "function" ? by() : by ?? "dispose()";
    return `This tensor ${this.describe()} has been freed: it was disposed by ${how}. ` +
      (how.startsWith("tidy()")
        ? "Return it from the tidy() function (or keep() it) to use it after the scope ends."
        : how.includes("DataLoader")
        ? "clone() a batch to keep it beyond the next one."
        : "Use it before disposing it, or clone() it first.");
  }

  /**
   * Copies the data back to the host (submits pending work and waits for it). A tensor
   * with a read check (see {@link attachReadCheck}) reads the check's data in the same wait,
   * and the check may throw.
   */
  async toArray(): Promise<Float32Array> {
    const c = readChecks.get(this);
    if (c) {
      const n = this.numel, m = c.data.numel;
      const staging = allocBuffer(4 * (n + m), "read with check");
      try {
        if (n) copyBuffer(this.buffer, staging, 4 * n);
        copyBuffer(c.data.buffer, staging, 4 * m, 0, 4 * n);
        const all = new Float32Array(await readBuffer(staging, 4 * (n + m)));
        c.onRead(all.subarray(n));
        return all.slice(0, n);
      } finally {
        releaseBuffer(staging);
      }
    }
    if (this.numel === 0) return new Float32Array(0);
    return new Float32Array(await readBuffer(this.buffer, this.numel * 4));
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.numel !== 1) {
      throw new Error(`item() needs a one-element tensor, got shape ${fmt(this.shape)}`);
    }
    return (await this.toArray())[0];
  }

  /**
   * Gives up this tensor (and its `.grad`). Its memory returns to the pool now, or, if a
   * recorded op saved it for its gradient, once `backward()` has run through that op.
   * Idempotent. `reason` names who disposed it, for later error messages (or makes that
   * name when a message needs it).
   */
  dispose(reason?: DisposeReason): void {
    if (this.#disposedBy !== undefined) return;
    this.#disposedBy = reason ?? "dispose() (or a `using` block)";
    readChecks.get(this)?.data.dispose();
    this.grad?.dispose();
    this.grad = null;
    if (this.#holds === 0) this.#free();
  }

  /** `using t = ...` disposes at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #free(): void {
    if (!this.#storage) return;
    finalizer.unregister(this);
    this.#storage.release();
    this.#storage = undefined;
    this.#node?.release(); // gives up what it held of its inputs
  }

  #operand(): Operand {
    return { buffer: this.buffer, shape: this.shape };
  }

  /** A view of the same data with another shape (one dimension may be -1). */
  reshape(...shape: number[] | [Shape]): Tensor {
    const s = resolveShape(
      Array.isArray(shape[0]) ? shape[0] : (shape as number[]),
      this.numel,
      this.shape,
    );
    const out = new Tensor(storageOf(this), s);
    return record(out, "reshape", [this], (g) => [g.reshape(this.shape)]);
  }

  /** The same data (shared, not copied), cut from the autograd graph. */
  detach(): Tensor {
    return new Tensor(storageOf(this), this.shape);
  }

  /** A copy of the data in new memory, with gradient (PyTorch's `clone()`). */
  clone(): Tensor {
    return this.#unary("copy");
  }

  /** This tensor broadcast to `shape`, as a materialised copy (gradient: sum back). */
  broadcastTo(shape: Shape): Tensor {
    const target = broadcastShapes(this.shape, shape);
    if (target.length !== shape.length || target.some((d, i) => d !== shape[i])) {
      throw new Error(`broadcastTo: cannot broadcast ${fmt(this.shape)} to ${fmt(shape)}`);
    }
    const out = Tensor.empty(shape);
    launchUnary("copy", 0, this.#operand(), out.#operand());
    return record(out, "broadcastTo", [this], (g) => [g.sumTo(this.shape)]);
  }

  // ---- elementwise ----

  #unary(op: UnaryOp, c = 0): Tensor {
    const out = Tensor.empty(this.shape);
    launchUnary(op, c, this.#operand(), out.#operand());
    return record(out, op, [this], (g) => {
      switch (op) {
        case "copy":
        case "add":
          return [g.detach()];
        case "mul":
          return [g.mul(c)];
        case "square":
          return [g.mul(this).mul(2)];
        case "pow": // c * x^(c-1)
          return [g.mul(this.pow(c - 1)).mul(c)];
        case "sqrt": // 1 / (2 sqrt(x))
          return [g.div(out).mul(0.5)];
        case "exp":
          return [g.mul(out)];
        case "log":
          return [g.div(this)];
        case "abs":
          return [g.mul(this.#unary("sign"))];
        default:
          throw new Error(`${op} has no gradient`);
      }
    });
  }

  #binary(other: Tensor, op: BinaryOp): Tensor {
    checkTensor(op, "other", other);
    const out = Tensor.empty(broadcastShapes(this.shape, other.shape));
    launchBinary(op, this.#operand(), other.#operand(), out.#operand());
    return record(out, op, [this, other], (g) => {
      const [a, b] = [this, other];
      switch (op) {
        case "add":
          return [g.sumTo(a.shape), g.sumTo(b.shape)];
        case "sub":
          return [g.sumTo(a.shape), g.neg().sumTo(b.shape)];
        case "mul":
          return [g.mul(b).sumTo(a.shape), g.mul(a).sumTo(b.shape)];
        case "div": // d/da = 1/b, d/db = -a/b^2 = -out/b
          return [g.div(b).sumTo(a.shape), g.mul(out).div(b).neg().sumTo(b.shape)];
        case "pow": // d/da = b a^(b-1), d/db = out ln(a)
          return [
            g.mul(b).mul(a.pow(b.sub(1))).sumTo(a.shape),
            b.requiresGrad ? g.mul(out).mul(a.log()).sumTo(b.shape) : null,
          ];
        case "eq":
          return [null, null];
      }
    });
  }

  /** Elementwise `this + other`, broadcasting. */
  add(other: Tensor | number): Tensor {
    return typeof other === "number" ? this.#unary("add", other) : this.#binary(other, "add");
  }
  /** Elementwise `this - other`, broadcasting. */
  sub(other: Tensor | number): Tensor {
    return typeof other === "number" ? this.#unary("add", -other) : this.#binary(other, "sub");
  }
  /** Elementwise `this * other`, broadcasting. */
  mul(other: Tensor | number): Tensor {
    return typeof other === "number" ? this.#unary("mul", other) : this.#binary(other, "mul");
  }
  /** Elementwise `this / other`, broadcasting. */
  div(other: Tensor | number): Tensor {
    return typeof other === "number" ? this.#unary("mul", 1 / other) : this.#binary(other, "div");
  }
  /** Elementwise `this ** exponent` (PyTorch's conventions for negative bases). */
  pow(exponent: Tensor | number): Tensor {
    return typeof exponent === "number"
      ? this.#unary("pow", exponent)
      : this.#binary(exponent, "pow");
  }
  /** Elementwise 1 where `this == other`, else 0 (no gradient). */
  eq(other: Tensor): Tensor {
    return this.#binary(other, "eq");
  }
  /** Elementwise square. */
  square(): Tensor {
    return this.#unary("square");
  }
  /** Elementwise square root. */
  sqrt(): Tensor {
    return this.#unary("sqrt");
  }
  /** Elementwise negation. */
  neg(): Tensor {
    return this.#unary("mul", -1);
  }
  /** Elementwise absolute value (gradient sign(x), 0 at 0). */
  abs(): Tensor {
    return this.#unary("abs");
  }
  /** Elementwise natural exponential. */
  exp(): Tensor {
    return this.#unary("exp");
  }
  /** Elementwise natural logarithm. */
  log(): Tensor {
    return this.#unary("log");
  }

  /** Elementwise logistic sigmoid, 1 / (1 + exp(-x)): one fused kernel each way. */
  sigmoid(): Tensor {
    const out = Tensor.empty(this.shape);
    launchActivation("sigmoid_forward", [this.buffer, out.buffer], this.numel);
    return record(out, "sigmoid", [this], (g) => {
      const dinp = Tensor.empty(this.shape);
      launchActivation("sigmoid_backward", [out.buffer, g.buffer, dinp.buffer], this.numel);
      return [dinp];
    });
  }

  /** Elementwise max(x, 0): one fused kernel each way (gradient 0 at 0, as PyTorch). */
  relu(): Tensor {
    const out = Tensor.empty(this.shape);
    launchActivation("relu_forward", [this.buffer, out.buffer], this.numel);
    return record(out, "relu", [this], (g) => {
      const dinp = Tensor.empty(this.shape);
      launchActivation("relu_backward", [this.buffer, g.buffer, dinp.buffer], this.numel);
      return [dinp];
    });
  }

  /**
   * Elementwise hyperbolic tangent, composed as 2 sigmoid(2x) - 1 (sigmoid's fused kernel;
   * the gradient, 1 - tanh(x)^2, comes from the tape). Float32 gives it an absolute error
   * of about 1e-7 (the spacing of floats near 1), so tanh of |x| below 1e-6 has few
   * correct digits, where PyTorch's is exact to a few ulps.
   *
   * @example
   * ```ts
   * import { Tensor } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const y = await Tensor.from([-20, 0, 0.5]).tanh().toArray();
   * assert.deepEqual(Array.from(y, (v) => v.toFixed(6)), ["-1.000000", "0.000000", "0.462117"]);
   * ```
   */
  tanh(): Tensor {
    return tidy(() => this.mul(2).sigmoid().mul(2).sub(1));
  }

  /**
   * Softmax along `dim` (PyTorch's `softmax(dim)`): exp(x - m) / sum(exp(x - m)) with m the
   * maximum along `dim`, so that no exp overflows. Composed of the elementwise and
   * reduction kernels; the gradient comes from the tape (m is a constant there: softmax
   * does not depend on it).
   *
   * Shape: any, `dim` in [-rank, rank) -> the same.
   *
   * @example
   * ```ts
   * import { Tensor } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const p = await Tensor.from([[0, Math.log(3)], [1000, 1000]]).softmax(1).toArray();
   * assert.deepEqual(Array.from(p, (v) => v.toFixed(4)), ["0.2500", "0.7500", "0.5000", "0.5000"]);
   * ```
   */
  softmax(dim: number): Tensor {
    const d = this.#dim("softmax", dim);
    return tidy(() => {
      const e = this.sub(this.max(d, true).detach()).exp();
      return e.div(e.sum(d, true));
    });
  }

  /**
   * Log-softmax along `dim` (PyTorch's `log_softmax(dim)`): x - m - log(sum(exp(x - m))),
   * m the maximum along `dim`: finite for any finite input, where log(softmax(x))
   * underflows to -Infinity. Composed as {@link Tensor.softmax}.
   *
   * Shape: any, `dim` in [-rank, rank) -> the same.
   *
   * @example
   * ```ts
   * import { Tensor } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const y = await Tensor.from([0, 200]).logSoftmax(0).toArray();
   * assert.deepEqual(Array.from(y), [-200, 0]); // log(softmax) would give -Infinity
   * ```
   */
  logSoftmax(dim: number): Tensor {
    const d = this.#dim("logSoftmax", dim);
    return tidy(() => {
      const z = this.sub(this.max(d, true).detach());
      return z.sub(z.exp().sum(d, true).log());
    });
  }

  /**
   * The index of the largest value along `dim` (PyTorch's `argmax`), as f32; the first
   * one on ties, and the first NaN if there is one (NaN counts as the largest, as in
   * PyTorch). Without `dim`, the index into the flattened tensor, as a 0-d tensor. Not
   * differentiable.
   *
   * Shape: [..., n, ...] -> the same without `dim` (with it as 1 if `keepdim`).
   *
   * @example
   * ```ts
   * import { Tensor } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const x = Tensor.from([[1, 5, 5], [7, 0, 2]]);
   * assert.deepEqual(Array.from(await x.argmax(1).toArray()), [1, 0]); // the first 5
   * assert.equal(await x.argmax().item(), 3);
   * ```
   */
  argmax(dim?: number, keepdim = false): Tensor {
    if (dim === undefined) return tidy(() => this.reshape([this.numel]).argmax(0));
    const d = this.#dim("argmax", dim);
    const n = this.shape[d];
    if (n === 0) {
      throw new Error(`argmax: dimension ${dim} of ${this.describe()} is empty: no maximum`);
    }
    return noGrad(() =>
      tidy(() => {
        // 1 at each maximum; with a NaN maximum, eq finds none and 1 - eq(x, x) marks the NaNs
        const isMax = this.eq(this.max(d, true)).add(1).sub(this.eq(this));
        const idx = Tensor.from(
          Float32Array.from({ length: n }, (_, i) => i - n),
          this.shape.map((s, i) => (i === d ? s : 1)),
        );
        // its index at a maximum, n elsewhere: the smallest is the first maximum
        return isMax.mul(idx).add(n).min(d, keepdim);
      })
    );
  }

  /**
   * Matrix product (PyTorch's `matmul`): [M, K] @ [K, P] -> [M, P] on the linear layer's
   * kernels (`matmul.wgsl`), the gradients too (dA = dout @ B^T, dB = A^T @ dout). A 1-D
   * left operand [K] is a row and drops from the result, a 1-D right one [K] a column,
   * likewise (two vectors give their dot product, 0-d); a left operand with more than two
   * dimensions [..., M, K] multiplies each of its matrices by the same right one [K, P].
   * A batched right operand is refused.
   *
   * Shape: [..., M, K] or [K] @ [K, P] or [K] -> [..., M, P] less the 1-D operands' dimension.
   *
   * @example
   * ```ts
   * import { Tensor } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const a = Tensor.from([[1, 2], [3, 4]]);
   * const b = Tensor.from([[5, 6], [7, 8]]);
   * assert.deepEqual(Array.from(await a.matmul(b).toArray()), [19, 22, 43, 50]);
   * assert.equal(await Tensor.from([1, 2]).matmul(Tensor.from([3, 4])).item(), 11);
   * ```
   */
  matmul(other: Tensor): Tensor {
    const [a, b] = [this, other];
    if (a.rank === 0 || b.rank === 0 || b.rank > 2) {
      throw new Error(
        `matmul expects [..., M, K] or [K] times [K, P] or [K], got ${a.describe()} @ ${b.describe()}` +
          (b.rank > 2 ? ": a batched right operand is not supported; reshape it to 2-D" : ""),
      );
    }
    const K = a.shape[a.rank - 1];
    const P = b.rank === 2 ? b.shape[1] : 1;
    if (b.shape[0] !== K) {
      throw new Error(
        `matmul: the inner sizes differ, ${a.describe()} @ ${b.describe()} (${K} against ${
          b.shape[0]
        }): the left operand's last size must equal the right one's first`,
      );
    }
    const lead = a.rank === 1 ? [] : a.shape.slice(0, -1);
    const M = lead.reduce((x, y) => x * y, 1);
    using a2 = a.reshape([M, K]);
    using b2 = b.reshape([K, P]);
    const s = linearSchedule();
    const out = Tensor.empty([M, P]);
    productAB(s, a2, b2, out, M, K, P);
    record(out, "matmul", [a2, b2], (dout) => {
      let da: Tensor | null = null, db: Tensor | null = null;
      if (a2.requiresGrad) {
        da = Tensor.empty([M, K]); // dout [M, P] @ b^T
        productABt(s, dout, b2, da, null, M, P, K);
      }
      if (b2.requiresGrad) {
        db = Tensor.empty([K, P]); // a^T @ dout [M, P]
        productAtB(s, a2, dout, db, null, K, M, P);
      }
      return [da, db];
    });
    using o = out;
    return o.reshape(b.rank === 2 ? [...lead, P] : lead);
  }

  /** `dim` normalised to [0, rank), checked to be one integer dimension. */
  #dim(op: string, dim: number): number {
    if (!Number.isInteger(dim)) {
      throw new Error(`${op}: dim must be an integer, got ${dim}`);
    }
    if (dim < -this.rank || dim >= this.rank) {
      throw new Error(
        `${op}: dim ${dim} is out of range for ${this.describe()}; use a dim in [${-this
          .rank}, ${this.rank})`,
      );
    }
    return dim < 0 ? dim + this.rank : dim;
  }

  // ---- reductions ----

  #reduce(op: ReduceOp, dims: Dims, keepdim: boolean, scale = 1): Tensor {
    const d = normDims(dims, this.rank);
    const keptShape = this.shape.map((s, i) => (d.includes(i) ? 1 : s));
    const out = Tensor.empty(keepdim ? keptShape : this.shape.filter((_, i) => !d.includes(i)));
    launchReduce(op, this.buffer, this.shape, d, out.buffer, scale);
    return record(out, op === "sum" ? (scale === 1 ? "sum" : "mean") : op, [this], (g) => {
      const gk = g.reshape(keptShape);
      if (op === "sum") {
        return [scale === 1 ? gk.broadcastTo(this.shape) : gk.mul(scale).broadcastTo(this.shape)];
      }
      // max/min: the gradient goes to the extreme values, split evenly among ties.
      const mask = this.eq(out.reshape(keptShape));
      return [gk.div(mask.sum(d, true)).mul(mask)];
    });
  }

  /** Sum over `dims` (all by default); `keepdim` keeps them with size 1. */
  sum(dims?: Dims, keepdim = false): Tensor {
    return this.#reduce("sum", dims, keepdim);
  }
  /** Mean over `dims` (all by default); `keepdim` keeps them with size 1. */
  mean(dims?: Dims, keepdim = false): Tensor {
    const n = numel(normDims(dims, this.rank).map((i) => this.shape[i]));
    return this.#reduce("sum", dims, keepdim, 1 / n);
  }
  /**
   * Largest value over `dims` (all by default), as `torch.amax`: values only; the
   * gradient is shared evenly among tied maxima. NaN wins.
   */
  max(dims?: Dims, keepdim = false): Tensor {
    return this.#reduce("max", dims, keepdim);
  }
  /** Smallest value over `dims`, as `torch.amin`; see {@link Tensor.max}. */
  min(dims?: Dims, keepdim = false): Tensor {
    return this.#reduce("min", dims, keepdim);
  }
  /**
   * Variance over `dims` (all by default): mean((x - mean(x))^2) * n / (n - 1), or without
   * the n / (n - 1) with `{ unbiased: false }`. Two passes (the mean first), so a large
   * mean costs no precision.
   */
  var(dims?: Dims, { keepdim = false, unbiased = true }: VarianceOptions = {}): Tensor {
    const n = numel(normDims(dims, this.rank).map((i) => this.shape[i]));
    const centered = this.sub(this.mean(dims, true));
    return centered.square().sum(dims, keepdim).div(unbiased ? n - 1 : n);
  }
  /** Standard deviation, `var(dims, opts).sqrt()`. */
  std(dims?: Dims, opts: VarianceOptions = {}): Tensor {
    return this.var(dims, opts).sqrt();
  }
  /** Euclidean (L2) norm over `dims` (all by default): sqrt(sum(x^2)). */
  norm(dims?: Dims, keepdim = false): Tensor {
    return this.square().sum(dims, keepdim).sqrt();
  }

  /**
   * Sums down to `shape`, undoing broadcasting (leading extra dims, and dims where `shape`
   * has size 1, are summed). A view when nothing needs summing.
   */
  sumTo(shape: Shape): Tensor {
    const off = this.rank - shape.length;
    const dims = this.shape.map((_, i) => i).filter((i) =>
      i < off || (shape[i - off] === 1 && this.shape[i] !== 1)
    );
    return dims.length === 0 ? this.reshape(shape) : this.sum(dims).reshape(shape);
  }

  /**
   * Keeps this intermediate tensor's gradient in `.grad` at the next `backward()` (PyTorch's
   * `retain_grad()`): how to look at the gradient reaching a layer's output. Leaves keep
   * theirs anyway. Returns this tensor.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tensor } from "../../mod.ts";
   * const x = Tensor.from([1, 2, 3], { requiresGrad: true });
   * const h = x.mul(2).retainGrad();
   * h.square().sum().backward(); // d/dh = 2h
   * assert.deepEqual(Array.from(await h.grad!.toArray()), [4, 8, 12]);
   * ```
   */
  retainGrad(): this {
    if (!this.requiresGrad) {
      throw new Error(
        `retainGrad() on a tensor ${this.describe()} that does not require grad: it gets no gradient`,
      );
    }
    this.#node?.retainGrad(this);
    return this;
  }

  /**
   * Back-propagates from this tensor: accumulates d(this)/d(leaf) into `leaf.grad` for
   * every leaf with `requiresGrad`. `grad` is the upstream gradient, of this tensor's
   * shape (like PyTorch's `y.backward(g)`); it may be omitted for a one-element tensor.
   * The graph is freed as it is used; `{ retainGraph: true }` keeps it for another
   * backward. The options may also come alone: `y.backward({ retainGraph: true })`.
   *
   * @example
   * ```ts
   * import { Tensor } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const x = Tensor.from([1, 2], { requiresGrad: true });
   * const y = x.square().sum();
   * y.backward({ retainGraph: true }); // dy/dx = 2x
   * y.backward(); // the graph was kept: the gradient accumulates, 4x
   * assert.deepEqual([...await x.grad!.toArray()], [4, 8]);
   * ```
   */
  backward(grad?: Tensor | BackwardOptions, opts: BackwardOptions = {}): void {
    if (grad !== undefined && !(grad instanceof Tensor)) {
      if (grad === null || typeof grad !== "object" || grad.constructor?.name === "Tensor") {
        checkTensor("backward", "grad", grad); // throws, naming what it got
      }
      opts = grad as BackwardOptions;
      grad = undefined;
    }
    if (!grad && this.numel !== 1) {
      throw new Error(
        `backward() without a gradient needs a one-element output, got shape ${
          fmt(this.shape)
        }; pass the upstream gradient: y.backward(g)`,
      );
    }
    if (grad && (grad.rank !== this.rank || grad.shape.some((d, i) => d !== this.shape[i]))) {
      throw new Error(
        `backward(): gradient shape ${fmt(grad.shape)} does not match output ${
          fmt(this.shape)
        }; pass a gradient of the output's shape`,
      );
    }
    runBackward(this, grad ? grad.detach() : unitSeed(this.shape), opts);
  }

  /** A readable summary (shape and flags; data stays on the GPU). */
  toString(): string {
    return `Tensor(${fmt(this.shape)}${this.requiresGrad ? ", requiresGrad" : ""}${
      this.#node ? `, gradFn=${this.#node.op}` : ""
    })`;
  }
}

/** A check read back with a tensor's data: see {@link attachReadCheck}. */
export interface ReadCheck {
  /** The GPU data the check reads (owned by the tensor it is attached to). */
  data: Tensor;
  /** Called with `data`'s values at every read of the tensor; throws to report a problem. */
  onRead(values: Float32Array): void;
}

const readChecks = new WeakMap<Tensor, ReadCheck>();

/**
 * Attaches a check to `t`, read in the same host wait as `t`'s own data by every
 * `t.toArray()` / `t.item()`: how an op reports what it found on the GPU (crossEntropy's
 * first invalid target) without a host wait of its own. `t` owns `check.data` (kept out of
 * any `tidy` scope, disposed with `t`). Internal to bnlab's ops.
 */
export function attachReadCheck(t: Tensor, check: ReadCheck): void {
  keep(check.data);
  readChecks.get(t)?.data.dispose();
  readChecks.set(t, check);
}

/** Removes `t`'s read check and hands its data to the caller (who then owns it), if any. */
export function takeReadCheck(t: Tensor): ReadCheck | undefined {
  const c = readChecks.get(t);
  readChecks.delete(t);
  return c;
}

/** `number 3`, `undefined`, `an Array`: what a message says was passed instead of a tensor. */
function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v !== "object") return `${typeof v} ${String(v).slice(0, 40)}`;
  const name = (v as object).constructor?.name ?? "Object";
  return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
}

/**
 * Throws unless `value` is a {@link Tensor} (or null where `nullable`), with a message that
 * names the op and the argument: `conv2d: argument "weight" must be a Tensor, got number 3`.
 * A tensor made by another copy of bnlab (imported from another URL) is refused by name.
 * Every public op calls it on its tensor arguments before anything else.
 */
export function checkTensor(op: string, name: string, value: unknown, nullable = false): void {
  if (value instanceof Tensor || (nullable && value === null)) return;
  const got = value !== null && typeof value === "object" &&
      value.constructor?.name === "Tensor"
    ? "a Tensor from another copy of bnlab (imported from another URL): import one copy only"
    : describeValue(value);
  throw new TypeError(
    `${op}: argument "${name}" must be a Tensor${nullable ? " or null" : ""}, got ${got}`,
  );
}

/** The implicit gradients of 1 that `backward()` made (see {@link isUnitSeed}). */
const unitSeeds = new WeakSet<Tensor>();
/** Per device, a buffer holding 1.0, copied into each scalar seed (a copy, not a launch). */
const ones = new WeakMap<GPUDevice, GPUBuffer>();

/** `backward()`'s gradient of 1 for an output of `shape`, marked as such. */
function unitSeed(shape: Shape): Tensor {
  let t: Tensor;
  if (numel(shape) === 1) {
    const device = deviceSync();
    let one = ones.get(device);
    if (!one) {
      // the device's for good, like the placeholders: outside the pool and its counts
      one = device.createBuffer({
        label: "one",
        size: 16,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
        mappedAtCreation: true,
      });
      new Float32Array(one.getMappedRange()).set([1, 0, 0, 0]);
      one.unmap();
      ones.set(device, one);
    }
    t = Tensor.empty(shape);
    copyBuffer(one, t.buffer, 4);
  } else t = Tensor.ones(shape);
  unitSeeds.add(t);
  return t;
}

/**
 * Whether `t` is the gradient of 1 that `backward()` made for the output it was called on
 * (`loss.backward()`): an op whose backward has the result for that gradient at hand (cross
 * entropy's forward writes it) can then skip its kernel. Internal to bnlab's ops.
 */
export function isUnitSeed(t: Tensor): boolean {
  return unitSeeds.has(t);
}

/**
 * Marks `t` as written in place (an optimizer step, running statistics, a load): a
 * backward that saved it before the write refuses to run. Internal to bnlab's ops.
 */
export function markWritten(t: Tensor): void {
  storageOf(t).version++;
}

/** Encodes `dst <- src` (same element count) and marks `dst` written. Internal. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (src.numel !== dst.numel) {
    throw new Error(`copy: ${src.describe()} does not fit ${dst.describe()}`);
  }
  if (dst.numel) copyBuffer(src.buffer, dst.buffer, dst.numel * 4);
  markWritten(dst);
}

/**
 * Records `out` as produced by `op` from `inputs` with gradient `backward`, holding
 * `saved` (tensors the closure reads besides the inputs and `out`). Returns `out`.
 * Ops call this; `out.requiresGrad` tells whether anything was recorded.
 */
export function record(
  out: Tensor,
  op: string,
  inputs: readonly Tensor[],
  backward: BackwardFn<Tensor>,
  saved: readonly Tensor[] = [],
): Tensor {
  recordNode(out, op, inputs, backward, saved, hold, attachOf(out));
  checkFinite(op, out);
  return out;
}
