/**
 * `Sequential`: modules applied one after another.
 *
 * @module
 */
import { Module } from "./module.ts";
import type { Tensor } from "../tensor/tensor.ts";

/**
 * A chain of modules, y = m_k(...m_1(m_0(x))) (`torch.nn.Sequential`). Children are
 * registered as "0", "1", ..., so state-dict names match PyTorch's (`"1.running_mean"`);
 * `net[1]` is the second module, `net.length` their number, and `for (const m of net)`
 * iterates them. A pair of neighbours with a fused kernel ({@link Module.fusedWith}:
 * BatchNorm or Conv2d then Sigmoid or ReLU, or one of those then MaxPool2d, neither hooked)
 * runs as one pass; of two overlapping pairs (Conv2d, Sigmoid, MaxPool2d) the later one.
 *
 * Shape: the first module's input -> the last module's output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Sequential, Tensor } from "../../mod.ts";
 * const net = new Sequential(new nn.Linear(4, 3), new nn.Sigmoid(), new nn.Linear(3, 2));
 * assert.deepEqual(net.forward(Tensor.randn([5, 4])).shape, [5, 2]);
 * assert.deepEqual(Object.keys(net.stateDict()), ["0.weight", "0.bias", "2.weight", "2.bias"]);
 * assert.deepEqual([net[1] instanceof nn.Sigmoid, net.length], [true, 3]);
 * ```
 */
export class Sequential extends Module implements Iterable<Module> {
  /** The module at position `index` (PyTorch's `net[1]`). */
  [index: number]: Module;
  #modules: Module[];

  /** The chain of `modules`, registered as children "0", "1", ... */
  constructor(...modules: Module[]) {
    super();
    this.#modules = modules;
    modules.forEach((m, i) => {
      if (!(m instanceof Module)) {
        throw new Error(`Sequential expects modules, got ${String(m)} at index ${i}`);
      }
      this.registerModule(String(i), m);
      Object.defineProperty(this, i, { value: m, enumerable: true });
    });
  }

  /** Number of modules. */
  get length(): number {
    return this.#modules.length;
  }

  /** The modules in order. */
  [Symbol.iterator](): Iterator<Module> {
    return this.#modules[Symbol.iterator]();
  }

  /** Applies each module in turn (each of {@link passes}). */
  forward(x: Tensor): Tensor {
    for (const pass of this.passes()) x = pass.forward(x);
    return x;
  }

  /**
   * The passes {@link forward} runs, in order: each module alone, three with a fused pass
   * (BatchNorm2d, activation, max pool; see {@link Module.fusedThrough}), or a pair with a
   * fused kernel (BatchNorm or Conv2d + activation, activation + max pool; see
   * {@link Module.fusedWith}) as one. When the second module of a pair also fuses with the
   * third (Conv2d, Sigmoid, MaxPool2d), the later pair does: the activation then runs after
   * pooling, on a quarter of the values. Asked afresh at each call, so hooks added or
   * removed take effect at once.
   *
   * @example
   * ```ts
   * import { nn } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const net = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.Sigmoid(), new nn.MaxPool2d(2));
   * const passes = net.passes().map((p) => `${p.first}: ${p.name}`);
   * assert.deepEqual(passes, ["0: Conv2d", "1: Sigmoid+MaxPool2d"]);
   * ```
   */
  passes(): SequentialPass[] {
    const ms = this.#modules;
    const out: SequentialPass[] = [];
    for (let i = 0; i < ms.length; i++) {
      const three = i + 2 < ms.length ? ms[i].fusedThrough(ms[i + 1], ms[i + 2]) : null;
      if (three) {
        const name = ms.slice(i, i + 3).map((m) => m.constructor.name).join("+");
        out.push({ first: i, modules: ms.slice(i, i + 3), name, forward: three });
        i += 2;
        continue;
      }
      const fused = i + 1 < ms.length ? ms[i].fusedWith(ms[i + 1]) : null;
      const later = fused && i + 2 < ms.length ? ms[i + 1].fusedWith(ms[i + 2]) : null;
      if (fused && !later) {
        const name = `${ms[i].constructor.name}+${ms[i + 1].constructor.name}`;
        out.push({ first: i, modules: [ms[i], ms[i + 1]], name, forward: fused });
        i++;
      } else {
        const m = ms[i];
        out.push({
          first: i,
          modules: [m],
          name: m.constructor.name,
          forward: (x) => m.forward(x),
        });
      }
    }
    return out;
  }
}

/** One pass of a {@link Sequential}: a module, or a fused pair of neighbours. */
export interface SequentialPass {
  /** The index of its (first) module. */
  first: number;
  /** Its modules, one to three. */
  modules: Module[];
  /**
   * Their class names, joined by "+" for a fused pass: "Conv2d", "Sigmoid+MaxPool2d",
   * "BatchNorm2d+Sigmoid+MaxPool2d".
   */
  name: string;
  /** Runs it. */
  forward: (x: Tensor) => Tensor;
}
