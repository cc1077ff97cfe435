/**
 * The GPU tensor: a float32 buffer on the WebGPU device, a shape, and a node in the
 * autograd graph.
 *
 * Tensors are contiguous and row-major. `reshape` and `detach` share storage (a
 * reference-counted buffer); every op writes a fresh buffer from the pool. A tensor's
 * memory is returned by `dispose()` (or `using`, or {@link tidy}); a tensor that is
 * garbage-collected undisposed gives its buffer back too, later.
 *
 * @module
 */
import { allocBuffer, releaseBuffer, uploadBuffer } from "../gpu/buffer_pool.ts";
import { readBuffer } from "../gpu/queue.ts";
import { checkShape, fmt, numel, resolveShape, type Shape } from "./shape.ts";
import { rngFor } from "./random.ts";
import { keep, track } from "./tidy.ts";
import { backward as runBackward, gradEnabled } from "./autograd.ts";
import * as ew from "../ops/elementwise/elementwise.ts";
import * as red from "../ops/reduce/reduce.ts";

/** A reference-counted GPU buffer shared by a tensor and its views. */
class Storage {
  refs = 1;
  constructor(public buffer: GPUBuffer) {}
  release(): void {
    if (--this.refs === 0) releaseBuffer(this.buffer);
  }
}

const finalizer = new FinalizationRegistry<Storage>((s) => s.release());

/** Options for tensor factories. */
export interface TensorOptions {
  /** Track operations on this tensor for {@link Tensor.backward}. Default false. */
  requiresGrad?: boolean;
}

/** Options for random factories. */
export interface RandomOptions extends TensorOptions {
  /** Seed for this call; without it the global generator ({@link manualSeed}) is used. */
  seed?: number;
}

/** Nested arrays of numbers, as accepted by {@link Tensor.from}. */
export type NestedArray = number | readonly NestedArray[];

/** Backward function of a recorded op: upstream gradient in, one gradient per parent out. */
export type BackwardFn = (dout: Tensor) => (Tensor | null)[];

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let d: NestedArray = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = d[0];
  }
  return shape;
}

/**
 * A float32 tensor on the GPU, with autograd.
 *
 * @example
 * ```ts
 * import { Tensor } from "../../mod.ts";
 * const x = Tensor.from([[1, 2], [3, 4]], undefined, { requiresGrad: true });
 * const y = x.square().sum(); // 1 + 4 + 9 + 16
 * y.backward();
 * console.log(await y.item()); // 30
 * console.log(await x.grad!.toArray()); // Float32Array [2, 4, 6, 8]
 * ```
 */
export class Tensor {
  /** Sizes of each dimension. */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  /** Whether gradients flow to this tensor. */
  requiresGrad: boolean;
  /** Accumulated gradient (leaf tensors with `requiresGrad`), after {@link backward}. */
  grad: Tensor | null = null;
  /** Inputs of the op that produced this tensor (autograd graph). */
  parents: readonly Tensor[] = [];
  /** Backward function of the op that produced this tensor, if recorded. */
  backwardFn: BackwardFn | undefined;
  /** A short name of the producing op, for error messages and graph dumps. */
  op = "leaf";
  #storage: Storage | undefined;

  /** Wraps an existing pooled buffer (internal: ops use {@link Tensor.empty}). */
  constructor(buffer: GPUBuffer | Storage, shape: Shape, requiresGrad = false) {
    checkShape(shape);
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    this.requiresGrad = requiresGrad;
    if (buffer instanceof Storage) {
      buffer.refs++;
      this.#storage = buffer;
    } else this.#storage = new Storage(buffer);
    finalizer.register(this, this.#storage, this);
    track(this);
  }

  /** An uninitialised tensor from the buffer pool, for kernels to write. */
  static empty(shape: Shape): Tensor {
    return new Tensor(allocBuffer(numel(shape) * 4), shape);
  }

  /**
   * A tensor holding `data`: nested arrays (shape inferred) or a flat array with `shape`.
   */
  static from(
    data: NestedArray | ArrayLike<number>,
    shape?: Shape,
    opts: TensorOptions = {},
  ): Tensor {
    let flat: Float32Array;
    if (data instanceof Float32Array) flat = data;
    else if (typeof data === "number") flat = Float32Array.of(data);
    else if (Array.isArray(data)) {
      flat = Float32Array.from((data as unknown[]).flat(Infinity) as number[]);
    } else flat = Float32Array.from(data as ArrayLike<number>);
    const s = shape ??
      (typeof data === "number"
        ? []
        : Array.isArray(data)
        ? inferShape(data as NestedArray)
        : [flat.length]);
    checkShape(s);
    if (numel(s) !== flat.length) {
      throw new Error(
        `Tensor.from: ${flat.length} values do not fill shape ${fmt(s)} (${numel(s)} elements)`,
      );
    }
    return new Tensor(uploadBuffer(flat.length ? flat : new Float32Array(1)), s, opts.requiresGrad);
  }

  /** A tensor of `shape` filled with `value`. */
  static full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
    checkShape(shape);
    const t = ew.fill(shape, value);
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

  /** Standard normal samples, seeded. */
  static randn(shape: Shape, opts: RandomOptions = {}): Tensor {
    checkShape(shape);
    const rng = rngFor(opts.seed);
    const a = new Float32Array(numel(shape));
    for (let i = 0; i < a.length; i++) a[i] = rng.normal();
    return Tensor.from(a, shape, opts);
  }

  /** Uniform samples in [low, high), seeded. */
  static rand(shape: Shape, opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
    checkShape(shape);
    const rng = rngFor(opts.seed);
    const { low = 0, high = 1 } = opts;
    const a = new Float32Array(numel(shape));
    for (let i = 0; i < a.length; i++) a[i] = low + (high - low) * rng.uniform();
    return Tensor.from(a, shape, opts);
  }

  /** The GPU buffer holding this tensor's data (throws once disposed). */
  get buffer(): GPUBuffer {
    if (!this.#storage) throw new Error(`This tensor ${fmt(this.shape)} has been disposed`);
    return this.#storage.buffer;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Whether {@link dispose} has been called. */
  get disposed(): boolean {
    return this.#storage === undefined;
  }

  /** Copies the data back to the host (submits pending work and waits for it). */
  async toArray(): Promise<Float32Array> {
    if (this.size === 0) return new Float32Array(0);
    return new Float32Array(await readBuffer(this.buffer, this.size * 4));
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new Error(`item() needs a one-element tensor, got shape ${fmt(this.shape)}`);
    }
    return (await this.toArray())[0];
  }

  /** Frees this tensor's buffer (shared storage is freed with its last view). Idempotent. */
  dispose(): void {
    if (!this.#storage) return;
    finalizer.unregister(this);
    this.#storage.release();
    this.#storage = undefined;
    this.grad?.dispose();
    this.grad = null;
  }

  /** `using t = ...` disposes at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** A view of the same data with another shape (one dimension may be -1). */
  reshape(...shape: number[] | [Shape]): Tensor {
    const s = resolveShape(
      Array.isArray(shape[0]) ? shape[0] : (shape as number[]),
      this.size,
      this.shape,
    );
    const out = new Tensor(this.#storageOrThrow(), s);
    return record(out, "reshape", [this], (g) => [g.reshape(this.shape)]);
  }

  /** The same data, cut from the autograd graph. */
  detach(): Tensor {
    return new Tensor(this.#storageOrThrow(), this.shape);
  }

  #storageOrThrow(): Storage {
    if (!this.#storage) throw new Error(`This tensor ${fmt(this.shape)} has been disposed`);
    return this.#storage;
  }

  /** Elementwise `this + other`, broadcasting. */
  add(other: Tensor | number): Tensor {
    return typeof other === "number" ? ew.unary(this, "add", other) : ew.binary(this, other, "add");
  }
  /** Elementwise `this - other`, broadcasting. */
  sub(other: Tensor | number): Tensor {
    return typeof other === "number"
      ? ew.unary(this, "add", -other)
      : ew.binary(this, other, "sub");
  }
  /** Elementwise `this * other`, broadcasting. */
  mul(other: Tensor | number): Tensor {
    return typeof other === "number" ? ew.unary(this, "mul", other) : ew.binary(this, other, "mul");
  }
  /** Elementwise `this / other`, broadcasting. */
  div(other: Tensor | number): Tensor {
    return typeof other === "number"
      ? ew.unary(this, "mul", 1 / other)
      : ew.binary(this, other, "div");
  }
  /** Elementwise `this ** exponent`. */
  pow(exponent: Tensor | number): Tensor {
    return typeof exponent === "number"
      ? ew.unary(this, "pow", exponent)
      : ew.binary(this, exponent, "pow");
  }
  /** Elementwise square. */
  square(): Tensor {
    return ew.unary(this, "square");
  }
  /** Elementwise square root. */
  sqrt(): Tensor {
    return ew.unary(this, "sqrt");
  }
  /** Elementwise negation. */
  neg(): Tensor {
    return ew.unary(this, "mul", -1);
  }
  /** Elementwise natural exponential. */
  exp(): Tensor {
    return ew.unary(this, "exp");
  }
  /** Elementwise natural logarithm. */
  log(): Tensor {
    return ew.unary(this, "log");
  }
  /** Elementwise logistic sigmoid. */
  sigmoid(): Tensor {
    return ew.unary(this, "sigmoid");
  }
  /** Elementwise max(x, 0). */
  relu(): Tensor {
    return ew.unary(this, "relu");
  }
  /** Sum over `dims` (all by default); `keepdim` keeps them with size 1. */
  sum(dims?: number | readonly number[], keepdim = false): Tensor {
    return red.sum(this, dims, keepdim);
  }
  /** Mean over `dims` (all by default); `keepdim` keeps them with size 1. */
  mean(dims?: number | readonly number[], keepdim = false): Tensor {
    return red.mean(this, dims, keepdim);
  }
  /** This tensor broadcast to `shape` (a copy). */
  expand(shape: Shape): Tensor {
    return ew.expand(this, shape);
  }

  /**
   * Back-propagates from this tensor: accumulates d(this)/d(leaf) into `leaf.grad` for
   * every leaf with `requiresGrad`. `grad` is the upstream gradient (like PyTorch's
   * `y.backward(g)`); it may be omitted only for a one-element tensor.
   */
  backward(grad?: Tensor): void {
    runBackward(this, grad);
  }

  /** A readable summary (shape and flags; data stays on the GPU). */
  toString(): string {
    return `Tensor(${fmt(this.shape)}${this.requiresGrad ? ", requiresGrad" : ""}${
      this.op !== "leaf" ? `, op=${this.op}` : ""
    })`;
  }
}

/**
 * Records `out` as produced by `op` from `parents` with gradient `backward`, when grad
 * mode is on and some parent requires grad. Returns `out`.
 */
export function record(out: Tensor, op: string, parents: Tensor[], backward: BackwardFn): Tensor {
  out.op = op;
  if (gradEnabled() && parents.some((p) => p.requiresGrad)) {
    out.requiresGrad = true;
    out.parents = parents;
    out.backwardFn = backward;
  }
  return out;
}

export { keep };
