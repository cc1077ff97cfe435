/**
 * `Module`, the base of every layer: parameters apart from buffers, children, train/eval
 * mode, and a state dict with PyTorch's names, so weights interchange with PyTorch.
 *
 * @module
 */
import { Tensor } from "../tensor/tensor.ts";
import { uploadBuffer } from "../gpu/buffer_pool.ts";
import { copyBuffer } from "../gpu/queue.ts";
import { fmt } from "../tensor/shape.ts";

/** A state-dict entry given as host data, e.g. read from a checkpoint. */
export interface HostTensor {
  shape: readonly number[];
  data: ArrayLike<number>;
}

/** A state dict: PyTorch names (`"1.running_mean"`) to tensors. */
export type StateDict = Record<string, Tensor>;

interface ScalarBuffer {
  get(): number;
  set(v: number): void;
}

/**
 * Base class of all layers. Subclasses register their tensors in the constructor and
 * implement {@link Module.forward}.
 *
 * @example
 * ```ts
 * import { nn, Tensor } from "../../mod.ts";
 * class Scale extends nn.Module {
 *   weight = this.registerParameter("weight", Tensor.ones([3], { requiresGrad: true }));
 *   forward(x: Tensor): Tensor {
 *     return x.mul(this.weight);
 *   }
 * }
 * const m = new Scale();
 * console.log(Object.keys(m.stateDict())); // ["weight"]
 * ```
 */
export abstract class Module {
  /** True in training mode (the default), false after {@link Module.eval}. */
  training = true;
  #params = new Map<string, Tensor | null>();
  #buffers = new Map<string, Tensor | null>();
  #scalars = new Map<string, ScalarBuffer>();
  #children = new Map<string, Module>();

  /** Computes the module's output. */
  abstract forward(...inputs: Tensor[]): Tensor;

  /** Registers a learnable parameter under its PyTorch name; returns it. */
  protected registerParameter<T extends Tensor | null>(name: string, t: T): T {
    if (t) t.requiresGrad = true;
    this.#params.set(name, t);
    return t;
  }

  /** Registers a non-learnable state tensor (e.g. `running_mean`); returns it. */
  protected registerBuffer<T extends Tensor | null>(name: string, t: T): T {
    this.#buffers.set(name, t);
    return t;
  }

  /**
   * Registers a host-side scalar buffer (e.g. `num_batches_tracked`): it appears in the
   * state dict as a 0-d tensor but lives on the host, where the module reads it each step.
   */
  protected registerScalarBuffer(name: string, get: () => number, set: (v: number) => void): void {
    this.#scalars.set(name, { get, set });
  }

  /** Registers a child module under `name`; returns it. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** Direct children with their names. */
  namedChildren(): [string, Module][] {
    return [...this.#children];
  }

  /** All parameters of this module and its descendants, with dotted PyTorch names. */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, t] of this.#params) if (t) out.push([prefix + k, t]);
    for (const [k, m] of this.#children) out.push(...m.namedParameters(`${prefix}${k}.`));
    return out;
  }

  /** All parameters, in registration order (children after own). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** All tensor buffers of this module and its descendants, with dotted names. */
  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, t] of this.#buffers) if (t) out.push([prefix + k, t]);
    for (const [k, m] of this.#children) out.push(...m.namedBuffers(`${prefix}${k}.`));
    return out;
  }

  /** All tensor buffers (running statistics, ...). */
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Sets training mode on this module and its descendants. */
  train(mode = true): this {
    this.training = mode;
    for (const m of this.#children.values()) m.train(mode);
    return this;
  }

  /** Sets inference mode (`train(false)`). */
  eval(): this {
    return this.train(false);
  }

  /** Frees and clears the gradients of all parameters. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * Parameters and buffers by PyTorch name. Tensor entries are the live tensors (not
   * copies); host scalar buffers are fresh 0-d tensors.
   */
  stateDict(prefix = ""): StateDict {
    const out: StateDict = {};
    for (const [k, t] of this.#params) if (t) out[prefix + k] = t;
    for (const [k, t] of this.#buffers) if (t) out[prefix + k] = t;
    for (const [k, s] of this.#scalars) out[prefix + k] = Tensor.from([s.get()], []);
    for (const [k, m] of this.#children) Object.assign(out, m.stateDict(`${prefix}${k}.`));
    return out;
  }

  /**
   * Copies values into this module's parameters and buffers. Names and shapes must match
   * exactly (as PyTorch's `strict=True`); the error lists what is missing, unexpected or
   * mis-shaped.
   */
  async loadStateDict(state: Record<string, Tensor | HostTensor>): Promise<void> {
    const own = this.#flatTargets("");
    const missing = [...own.keys()].filter((k) => !(k in state));
    const unexpected = Object.keys(state).filter((k) => !own.has(k));
    const bad: string[] = [];
    for (const [k, target] of own) {
      const v = state[k];
      if (!v) continue;
      const want = target instanceof Tensor ? target.shape : [];
      const got = v.shape;
      const wantN = want.reduce((a, b) => a * b, 1);
      const sameShape = got.length === want.length && got.every((d, i) => d === want[i]);
      // PyTorch saves num_batches_tracked as shape []; accept [1] for it too.
      if (
        !sameShape && !(!(target instanceof Tensor) && wantN === got.reduce((a, b) => a * b, 1))
      ) {
        bad.push(`${k}: expected ${fmt(want)}, got ${fmt(got)}`);
      }
    }
    if (missing.length || unexpected.length || bad.length) {
      const parts = [];
      if (missing.length) parts.push(`missing keys: ${missing.join(", ")}`);
      if (unexpected.length) parts.push(`unexpected keys: ${unexpected.join(", ")}`);
      if (bad.length) parts.push(`shape mismatch: ${bad.join("; ")}`);
      throw new Error(`loadStateDict failed for ${this.constructor.name}: ${parts.join("; ")}`);
    }
    for (const [k, target] of own) {
      const v = state[k];
      if (target instanceof Tensor) {
        if (v === target) continue; // loading a module's own state dict: nothing to copy
        if (v instanceof Tensor) copyBuffer(v.buffer, target.buffer, target.size * 4);
        else {
          const src = uploadBuffer(Float32Array.from(v.data), "state upload");
          using tmp = new Tensor(src, target.shape);
          copyBuffer(tmp.buffer, target.buffer, target.size * 4);
        }
      } else {
        const data = v instanceof Tensor ? await v.toArray() : v.data;
        target.set(Number(data[0]));
      }
    }
  }

  #flatTargets(prefix: string): Map<string, Tensor | ScalarBuffer> {
    const out = new Map<string, Tensor | ScalarBuffer>();
    for (const [k, t] of this.#params) if (t) out.set(prefix + k, t);
    for (const [k, t] of this.#buffers) if (t) out.set(prefix + k, t);
    for (const [k, s] of this.#scalars) out.set(prefix + k, s);
    for (const [k, m] of this.#children) {
      for (const [kk, v] of m.#flatTargets(`${prefix}${k}.`)) out.set(kk, v);
    }
    return out;
  }
}
