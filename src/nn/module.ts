/**
 * `Module`, the base of every layer: parameters apart from buffers, children, train/eval
 * mode, forward hooks, and a state dict with PyTorch's names, so weights interchange with
 * PyTorch.
 *
 * Ownership. A module owns its parameters and buffers; `dispose()` (or `using`) frees
 * them. Assigning a new tensor to a property registered under the same name (as the
 * lecture's `BatchNorm` does with its moving statistics each step) makes the module own
 * the new one (kept out of any `tidy()` scope, cut from the graph) and frees the old
 * one, like PyTorch's `__setattr__`. `stateDict()` hands the caller views it owns.
 *
 * @module
 */
import { copyInto, markWritten, Tensor } from "../tensor/tensor.ts";
import { keep } from "../tensor/tidy.ts";
import { fmt, numel } from "../tensor/shape.ts";
import { moduleTree, thousands } from "./repr.ts";

/** A state-dict entry given as host data, e.g. read from a checkpoint. */
export interface HostTensor {
  /** Sizes of each dimension (`[]` for a scalar). */
  shape: readonly number[];
  /** Values, row-major; exactly `numel(shape)` of them. */
  data: ArrayLike<number>;
}

/**
 * Parameters and buffers by PyTorch name (`"1.running_mean"`): views of the module's
 * tensors (sharing their memory, so later updates show), owned by the caller. Dispose
 * them with `using sd = net.stateDict()`, or within `tidy()`; that never frees the
 * module's own tensors.
 */
export interface StateDict {
  /** The view of the parameter or buffer `name`. */
  [name: string]: Tensor;
  /** Disposes every view. */
  [Symbol.dispose](): void;
}

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /**
   * Require the names to match exactly (PyTorch's `strict=True`). With false, missing and
   * unexpected names are ignored; shapes must still match. Default true.
   */
  strict?: boolean;
}

/** A forward hook: sees a module's inputs and output; may return a replacement output. */
export type ForwardHook = (module: Module, inputs: Tensor[], output: Tensor) => Tensor | void;

/** What {@link Module.registerForwardHook} returns. */
export interface HookHandle {
  /** Unregisters the hook. Idempotent. */
  remove(): void;
}

/** Options of {@link Module.registerBuffer}. */
export interface BufferOptions {
  /**
   * The buffer holds an integer count (`num_batches_tracked`): checkpoints store it as
   * `I64`, as PyTorch does. Default false.
   */
  integer?: boolean;
}

/** A module's registries (kept in a WeakMap, not `#private` fields: the module is a Proxy). */
interface State {
  params: Map<string, Tensor | null>;
  buffers: Map<string, Tensor | null>;
  integers: Set<string>;
  children: Map<string, Module>;
  hooks: Map<number, ForwardHook>;
}

/** Registries by module, under both the proxy users hold and the object behind it. */
const states = new WeakMap<object, State>();
const stateOf = (m: object): State => states.get(m)!;
let hookIds = 0;

/** Keeps a new value of a registered tensor and frees the old one. */
function replace(map: Map<string, Tensor | null>, name: string, value: unknown, param: boolean) {
  const old = map.get(name);
  if (value === old) return value;
  if (value !== null && !(value instanceof Tensor)) {
    throw new Error(
      `Cannot assign ${typeof value} to ${param ? "parameter" : "buffer"} "${name}": ` +
        "a Tensor or null is expected",
    );
  }
  let kept = value;
  if (value) {
    if (param) {
      kept = keep(value);
      value.requiresGrad = true;
    } else {
      // A buffer never takes gradients: keep a view cut from the graph, so it does not
      // hold this step's graph alive into the next step.
      kept = keep(value.detach());
    }
  }
  map.set(name, kept);
  old?.dispose();
  return kept;
}

/** PyTorch's `__setattr__`: registered tensors are replaced with ownership; modules register. */
const handler: ProxyHandler<Module> = {
  set(target, prop, value, receiver) {
    return Reflect.set(target, prop, intercept(target, prop, value), receiver);
  },
  defineProperty(target, prop, desc) {
    if ("value" in desc) desc = { ...desc, value: intercept(target, prop, desc.value) };
    return Reflect.defineProperty(target, prop, desc);
  },
};

function intercept(target: Module, prop: string | symbol, value: unknown): unknown {
  const st = states.get(target);
  if (typeof prop !== "string" || !st) return value;
  if (st.params.has(prop)) return replace(st.params, prop, value, true);
  if (st.buffers.has(prop)) return replace(st.buffers, prop, value, false);
  if (value instanceof Module && !st.children.has(prop) && !prop.startsWith("_")) {
    st.children.set(prop, value);
  }
  return value;
}

/**
 * The registered tensors of `m` and its descendants, with dotted names, in PyTorch's
 * order: each module's own (parameters before buffers when both are asked for), then its
 * children's.
 */
function named(m: Module, kinds: ("params" | "buffers")[], prefix: string): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  for (const kind of kinds) for (const [k, t] of stateOf(m)[kind]) if (t) out.push([prefix + k, t]);
  for (const [k, c] of stateOf(m).children) out.push(...named(c, kinds, `${prefix}${k}.`));
  return out;
}

/**
 * Base class of all layers. Subclasses register their tensors in the constructor and
 * implement {@link Module.forward}. A property holding a `Module` registers it as a
 * child under the property's name, as in PyTorch.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * class Scale extends nn.Module {
 *   weight = this.registerParameter("weight", Tensor.ones([3]));
 *   forward(x: Tensor): Tensor {
 *     return x.mul(this.weight);
 *   }
 * }
 * const m = new Scale();
 * using sd = m.stateDict();
 * assert.deepEqual(Object.keys(sd), ["weight"]);
 * assert.deepEqual(Array.from(await m.forward(Tensor.from([1, 2, 3])).toArray()), [1, 2, 3]);
 * ```
 */
export abstract class Module {
  /** True in training mode (the default), false after {@link Module.eval}. */
  training = true;
  /** A module with no parameters, buffers or children yet. */
  constructor() {
    const state: State = {
      params: new Map(),
      buffers: new Map(),
      integers: new Set(),
      children: new Map(),
      hooks: new Map(),
    };
    // Subclass fields and constructors run on the proxy, so their assignments are seen.
    const proxy = new Proxy(this, handler);
    states.set(this, state);
    states.set(proxy, state);
    return proxy;
  }

  /** Computes the module's output. */
  abstract forward(...inputs: Tensor[]): Tensor;

  /**
   * One pass computing this module and then `next`, when this module has a fused kernel for
   * the pair (BatchNorm1d/2d, Conv2d or Linear followed by Sigmoid or ReLU: `batchNorm(...,
   * { activation })`, `conv2d(..., { activation })`, `linear(..., { activation })`; Sigmoid
   * or ReLU followed by MaxPool2d: `maxPool2d(..., { activation })`), else null.
   * {@link Sequential} asks each neighbouring pair and runs the fused pass in
   * place of the two forwards: the same values up to float32 rounding, one kernel and one
   * tensor fewer each way. A pair where either module has a forward hook or a `forward` of
   * its own (a subclass) is not fused: the intermediate tensor is then seen, so it is made.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { nn, Tensor } from "../../mod.ts";
   * const fused = new nn.BatchNorm1d(3).fusedWith(new nn.Sigmoid());
   * assert.equal(fused?.(Tensor.randn([4, 3])).gradFn?.op, "batchNorm+sigmoid");
   * assert.equal(new nn.Linear(3, 3).fusedWith(new nn.ReLU())?.(Tensor.randn([2, 3])).gradFn?.op, "linear+relu");
   * assert.equal(new nn.Sigmoid().fusedWith(new nn.BatchNorm1d(3)), null);
   * ```
   */
  fusedWith(_next: Module): ((x: Tensor) => Tensor) | null {
    return null;
  }

  /**
   * One pass computing this module, then `next`, then `after`, when this module has a fused
   * kernel for the three (BatchNorm2d, then Sigmoid or ReLU, then MaxPool2d(2):
   * `batchNormMaxPool2d`, which never stores the normalized values), else null.
   * {@link Sequential} asks each run of three before the pairs; the same rule as
   * {@link fusedWith}: a module with a forward hook or a `forward` of its own is not fused.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { nn, Tensor } from "../../mod.ts";
   * const bn = new nn.BatchNorm2d(2);
   * const fused = bn.fusedThrough(new nn.Sigmoid(), new nn.MaxPool2d(2));
   * assert.equal(fused?.(Tensor.randn([2, 2, 4, 4])).gradFn?.op, "batchNorm+sigmoid+maxPool2d");
   * assert.equal(bn.fusedThrough(new nn.Sigmoid(), new nn.MaxPool2d(3)), null);
   * ```
   */
  fusedThrough(_next: Module, _after: Module): ((x: Tensor) => Tensor) | null {
    return null;
  }

  /**
   * Registers a learnable parameter under its PyTorch name (it gets `requiresGrad`, and
   * the module owns it); returns it.
   */
  protected registerParameter<T extends Tensor | null>(name: string, t: T): T {
    if (t) {
      t.requiresGrad = true;
      keep(t);
    }
    stateOf(this).params.set(name, t);
    return t;
  }

  /**
   * Registers a non-learnable state tensor (e.g. `running_mean`) that the module owns;
   * returns it.
   */
  protected registerBuffer<T extends Tensor | null>(
    name: string,
    t: T,
    { integer = false }: BufferOptions = {},
  ): T {
    if (t) keep(t);
    stateOf(this).buffers.set(name, t);
    if (integer) stateOf(this).integers.add(name);
    return t;
  }

  /** Registers a child module under `name`; returns it. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    stateOf(this).children.set(name, m);
    return m;
  }

  /** Direct children with their names. */
  namedChildren(): [string, Module][] {
    return [...stateOf(this).children];
  }

  /**
   * This module (name `""`) and every descendant, with dotted names (`"1"`, `"block.0"`),
   * depth first, each once.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { lenet } from "../../mod.ts";
   * const names = lenet().namedModules().map(([name, m]) => `${name}:${m.constructor.name}`);
   * assert.deepEqual(names.slice(0, 3), [":Sequential", "0:Conv2d", "1:BatchNorm2d"]);
   * ```
   */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (name: string, m: Module) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [k, c] of stateOf(m).children) visit(name ? `${name}.${k}` : k, c);
    };
    visit(prefix, this);
    return out;
  }

  /** This module and every descendant (see {@link Module.namedModules}). */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** All parameters of this module and its descendants, with dotted PyTorch names. */
  namedParameters(prefix = ""): [string, Tensor][] {
    return named(this, ["params"], prefix);
  }

  /** All parameters, in registration order (children after own). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** All buffers of this module and its descendants, with dotted names. */
  namedBuffers(prefix = ""): [string, Tensor][] {
    return named(this, ["buffers"], prefix);
  }

  /** All buffers (running statistics, ...). */
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Names (dotted) of the buffers that hold integer counts (stored as `I64`). */
  integerBuffers(prefix = ""): Set<string> {
    const out = new Set<string>();
    for (const k of stateOf(this).integers) out.add(prefix + k);
    for (const [k, m] of stateOf(this).children) {
      for (const n of m.integerBuffers(`${prefix}${k}.`)) out.add(n);
    }
    return out;
  }

  /** Sets training mode on this module and its descendants. */
  train(mode = true): this {
    this.training = mode;
    for (const m of stateOf(this).children.values()) m.train(mode);
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
   * Registers `hook`, called after every `forward` of this module with its inputs and
   * output (PyTorch's `register_forward_hook`); a returned tensor replaces the output.
   * For looking inside a network: capture a layer's activations while it trains.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { nn, Tensor } from "../../mod.ts";
   * const net = new nn.Sequential(new nn.Linear(4, 3), new nn.Sigmoid());
   * const seen: number[][] = [];
   * const handle = net[1].registerForwardHook((_m, _inputs, out) => {
   *   seen.push([...out.shape]);
   * });
   * net.forward(Tensor.zeros([2, 4]));
   * handle.remove();
   * net.forward(Tensor.zeros([2, 4]));
   * assert.deepEqual(seen, [[2, 3]]); // the second call ran without the hook
   * ```
   */
  registerForwardHook(hook: ForwardHook): HookHandle {
    const hooks = stateOf(this).hooks;
    const id = hookIds++;
    hooks.set(id, hook);
    if (!Object.hasOwn(this, "forward")) {
      const own = Object.getPrototypeOf(this).forward as (...x: Tensor[]) => Tensor;
      // An own `forward` wraps the class's: every caller (Sequential, fit) runs the hooks.
      Object.defineProperty(this, "forward", {
        configurable: true,
        writable: true,
        value: (...inputs: Tensor[]): Tensor => {
          let out = own.apply(this, inputs);
          for (const h of [...hooks.values()]) out = h(this, inputs, out) ?? out;
          return out;
        },
      });
    }
    return {
      remove: () => {
        hooks.delete(id);
        if (hooks.size === 0 && Object.hasOwn(this, "forward")) {
          delete (this as { forward?: unknown }).forward;
        }
      },
    };
  }

  /**
   * Views of the parameters and buffers by PyTorch name, owned by the caller (see
   * {@link StateDict}): `using sd = net.stateDict()`.
   */
  stateDict(prefix = ""): StateDict {
    const out = {} as StateDict;
    for (const [k, t] of named(this, ["params", "buffers"], prefix)) out[k] = t.detach();
    Object.defineProperty(out, Symbol.dispose, {
      value: () => Object.values(out).forEach((t) => t.dispose()),
    });
    return out;
  }

  /**
   * Copies values into this module's parameters and buffers, from tensors (another
   * module's state dict) or host data (a checkpoint). Synchronous: the copies are
   * encoded on the GPU queue, so every later operation sees the new values. All or
   * nothing: names, shapes and data lengths are checked first, and on any mismatch the
   * error lists every problem and nothing is changed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { lenet, Tensor } from "../../mod.ts";
   * const a = lenet(), b = lenet();
   * const x = Tensor.randn([2, 1, 28, 28], { seed: 0 });
   * a.eval(), b.eval();
   * assert.notDeepEqual(await b.forward(x).toArray(), await a.forward(x).toArray());
   * using sd = a.stateDict();
   * b.loadStateDict(sd); // b now computes what a computes
   * assert.deepEqual(await b.forward(x).toArray(), await a.forward(x).toArray());
   * ```
   */
  loadStateDict(
    state: Readonly<Record<string, Tensor | HostTensor>>,
    { strict = true }: LoadStateDictOptions = {},
  ): void {
    const own = new Map([...this.namedParameters(), ...this.namedBuffers()]);
    const integers = this.integerBuffers();
    const problems: string[] = [];
    const missing = [...own.keys()].filter((k) => !(k in state));
    const unexpected = Object.keys(state).filter((k) => !own.has(k));
    if (strict && missing.length) problems.push(`missing keys: ${missing.join(", ")}`);
    if (strict && unexpected.length) problems.push(`unexpected keys: ${unexpected.join(", ")}`);
    const bad: string[] = [];
    for (const [k, target] of own) {
      const v = state[k];
      if (v === undefined) continue;
      const got = v.shape;
      const same = got.length === target.rank && got.every((d, i) => d === target.shape[i]);
      // PyTorch saves num_batches_tracked as shape []; accept [1] for it too.
      const scalarOk = integers.has(k) && target.numel === 1 && numel(got) === 1;
      if (!same && !scalarOk) {
        bad.push(`${k}: expected ${fmt(target.shape)}, got ${fmt(got)}`);
      } else if (v instanceof Tensor) {
        if (v.disposed) bad.push(`${k}: the source tensor was disposed`);
      } else if (!v.data || v.data.length !== target.numel) {
        bad.push(
          `${k}: shape ${fmt(got)} needs ${target.numel} values, the data has ${
            v.data?.length ?? "none"
          }`,
        );
      }
    }
    if (bad.length) problems.push(`bad entries: ${bad.join("; ")}`);
    if (problems.length) {
      throw new Error(
        `loadStateDict failed for ${this.constructor.name}, nothing was loaded: ${
          problems.join("; ")
        }`,
      );
    }
    for (const [k, target] of own) {
      const v = state[k];
      if (v === undefined) continue;
      if (v instanceof Tensor) {
        if (v.buffer === target.buffer) markWritten(target); // its own state: nothing to copy
        else copyInto(target, v);
      } else {
        using src = Tensor.from(Float32Array.from(v.data), { shape: target.shape });
        copyInto(target, src);
      }
    }
  }

  /**
   * The arguments that PyTorch's `repr` shows inside this module's parentheses (its
   * `extra_repr`), as Python writes them: `"1, 6, kernel_size=(5, 5), stride=(1, 1)"`.
   * Empty by default; each layer gives its own, and a module of your own may too.
   */
  extraRepr(): string {
    return "";
  }

  /**
   * The module tree as PyTorch prints it (`print(net)`), then the number of parameters
   * (elements of all parameters, PyTorch's `sum(p.numel() for p in net.parameters())`).
   *
   * @example
   * ```ts
   * import { nn } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const net = new nn.Sequential(new nn.Conv2d(1, 6, 5, { padding: 2 }), new nn.Sigmoid());
   * assert.equal(String(net), [
   *   "Sequential(",
   *   "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))",
   *   "  (1): Sigmoid()",
   *   ")",
   *   "Parameters: 156",
   * ].join("\n"));
   * ```
   */
  toString(): string {
    const count = this.parameters().reduce((n, p) => n + p.numel, 0);
    return `${moduleTree(this)}\nParameters: ${thousands(count)}`;
  }

  /** Frees every parameter and buffer of this module and its descendants. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const map of [stateOf(m).params, stateOf(m).buffers]) {
        for (const t of map.values()) t?.dispose();
      }
    }
  }

  /** Same as {@link Module.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
