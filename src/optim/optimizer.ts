/**
 * `Optimizer`, the base of `SGD` and `Adam`: the parameters copied with their gradients
 * into flat buffers the optimizer owns, one kernel launch per run of parameters that the
 * step treats alike, the per-parameter state (momentum, moments) kept flat beside them,
 * and a state dict with PyTorch's names (`state`, `param_groups`, `momentum_buffer`,
 * `exp_avg`, `exp_avg_sq`, `step`).
 *
 * @module
 */
import { copyBuffer } from "../gpu/queue.ts";
import { allocBuffer, releaseBuffer } from "../gpu/buffer_pool.ts";
import { checkTensor, markWritten, Tensor } from "../tensor/tensor.ts";
import { fmt } from "../tensor/shape.ts";
import type { HostTensor } from "../nn/module.ts";

/** Floats from one parameter's start to the next's in the flat buffers: 256 bytes. */
const ALIGN = 64;

/** A hyperparameter as a state dict stores it (PyTorch's `betas` is a pair). */
export type Hyperparameter = number | boolean | readonly number[];

/**
 * One parameter's optimizer state: its state tensors by PyTorch name (`momentum_buffer`;
 * `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`) and `step`, the updates it has had.
 */
export interface ParamState {
  /** Updates this parameter has had. */
  step: number;
  /** The state tensors by PyTorch name, each of the parameter's shape. */
  [name: string]: Tensor | HostTensor | number;
}

/**
 * An optimizer's state as PyTorch's `optimizer.state_dict()` lays it out: `state` by
 * parameter index (only parameters that have state: those updated at least once), and one
 * parameter group with the hyperparameters and the parameter indices. The tensors are
 * copies the caller owns: `using sd = opt.stateDict()`.
 */
export interface OptimizerStateDict {
  /** Per parameter index, its state. */
  state: Record<number, ParamState>;
  /** The hyperparameters (`lr`, ...) and `params`, the indices of the parameters. */
  param_groups: Record<string, Hyperparameter>[];
  /** Disposes the state tensors. */
  [Symbol.dispose]?: () => void;
}

/**
 * The base of the flat-buffer optimizers. A subclass names its per-parameter state
 * buffers ({@link Optimizer.stateNames}), its hyperparameters ({@link Optimizer.hyperparameters}),
 * and encodes the update of a run of parameters ({@link Optimizer.update}); the base copies
 * parameters and gradients in and out, counts steps, and saves and loads the state.
 *
 * @example
 * ```ts
 * import { optim, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const w = Tensor.from([1, 2], { requiresGrad: true });
 * const opt: optim.Optimizer = new optim.Adam([w], { lr: 0.1 });
 * w.square().sum().backward();
 * opt.step();
 * using sd = opt.stateDict();
 * assert.equal(sd.state[0].step, 1);
 * assert.deepEqual(Object.keys(sd.state[0]), ["step", "exp_avg", "exp_avg_sq"]);
 * ```
 */
export abstract class Optimizer {
  /** Learning rate; may be changed between steps (a scheduler does). */
  lr: number;
  /** The parameters being optimised. */
  readonly params: readonly Tensor[];
  /** Each parameter's first float in the flat buffers (a multiple of 64: 256 bytes). */
  protected readonly offsets: number[] = [];
  /** Floats in each flat buffer. */
  protected readonly total: number = 0;
  /** Updates each parameter has had (0: no state yet). */
  protected steps: number[];
  /** The flat parameters and gradients, and the state buffers by name, made when first needed. */
  #flat = new Map<string, GPUBuffer>();

  /** An optimizer of `params` (each needs `requiresGrad`) with learning rate `lr`. */
  constructor(readonly name: string, params: Iterable<Tensor>, lr: number) {
    if (!(lr >= 0)) throw new Error(`${name} needs a learning rate lr >= 0, got ${lr}`);
    this.params = [...params];
    this.params.forEach((p, i) => checkTensor(name, `params[${i}]`, p));
    if (this.params.length === 0) throw new Error(`${name} got an empty parameter list`);
    this.lr = lr;
    let total = 0;
    for (const p of this.params) {
      this.offsets.push(total);
      total += Math.ceil(Math.max(p.numel, 1) / ALIGN) * ALIGN;
    }
    this.total = total;
    this.steps = this.params.map(() => 0);
  }

  /** The names of the per-parameter state buffers (PyTorch's), in state-dict order. */
  protected abstract stateNames(): readonly string[];

  /** The hyperparameters as PyTorch's `param_groups[0]` names them (besides `params`). */
  abstract hyperparameters(): Record<string, Hyperparameter>;

  /**
   * Encodes the update of the parameters whose flat floats are [base4 * 4, (base4 + n4) * 4),
   * all at their `step`-th update (1 on the first) or at steps of the same
   * {@link Optimizer.runKey}, reading `buffer("params")`,
   * `buffer("grads")` and the state buffers.
   */
  protected abstract update(base4: number, n4: number, step: number): void;

  /**
   * What makes the update at `step` differ from others: parameters at steps with the same
   * key share a launch. The step itself by default (Adam's bias corrections); SGD tells
   * only the first step apart.
   */
  protected runKey(step: number): number {
    return step;
  }

  /** The flat buffer `name` ("params", "grads", or a state name), made on first use. */
  protected buffer(name: string): GPUBuffer {
    let b = this.#flat.get(name);
    if (!b) {
      b = allocBuffer(4 * this.total, `${this.name.toLowerCase()} ${name}`);
      this.#flat.set(name, b);
    }
    return b;
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    const active = this.params.map((p) => {
      const g = p.grad;
      if (!g || p.numel === 0) return false;
      if (g.numel !== p.numel) {
        throw new Error(
          `${this.name}: gradient ${fmt(g.shape)} does not match parameter ${fmt(p.shape)}`,
        );
      }
      return true;
    });
    if (!active.some((a) => a)) return;
    const [params, grads] = [this.buffer("params"), this.buffer("grads")];
    this.params.forEach((p, i) => {
      if (!active[i]) return;
      copyBuffer(p.grad!.buffer, grads, 4 * p.numel, 0, 4 * this.offsets[i]);
      copyBuffer(p.buffer, params, 4 * p.numel, 0, 4 * this.offsets[i]);
    });
    // one launch per run of consecutive active parameters whose steps update alike
    for (let i = 0; i < this.params.length;) {
      if (!active[i]) {
        i++;
        continue;
      }
      let j = i + 1;
      const key = this.runKey(this.steps[i] + 1);
      while (j < this.params.length && active[j] && this.runKey(this.steps[j] + 1) === key) j++;
      const end = j < this.params.length ? this.offsets[j] : this.total;
      this.update(this.offsets[i] / 4, Math.ceil((end - this.offsets[i]) / 4), this.steps[i] + 1);
      for (let k = i; k < j; k++) this.steps[k]++;
      i = j;
    }
    this.params.forEach((p, i) => {
      if (!active[i]) return;
      copyBuffer(params, p.buffer, 4 * p.numel, 4 * this.offsets[i], 0);
      markWritten(p); // a backward that saved p before this step would now be wrong
    });
  }

  /** Frees and clears the gradients of all parameters (PyTorch's `set_to_none=True`). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * The optimizer's state (see {@link OptimizerStateDict}): copies of each updated
   * parameter's state tensors and its step count, and the hyperparameters. Synchronous:
   * the copies are encoded on the GPU queue after every step so far.
   *
   * @example
   * ```ts
   * import { optim, Tensor } from "../../mod.ts";
   * import assert from "node:assert/strict";
   * const w = Tensor.from([1, 2], { requiresGrad: true });
   * const opt = new optim.SGD([w], { lr: 0.1, momentum: 0.9 });
   * w.sum().backward();
   * opt.step();
   * using sd = opt.stateDict();
   * assert.deepEqual(Array.from(await (sd.state[0].momentum_buffer as Tensor).toArray()), [1, 1]);
   * assert.deepEqual(sd.param_groups[0].params, [0]);
   * ```
   */
  stateDict(): OptimizerStateDict & Disposable {
    const state: Record<number, ParamState> = {};
    const made: Tensor[] = [];
    this.params.forEach((p, i) => {
      if (this.steps[i] === 0) return;
      const s: ParamState = { step: this.steps[i] };
      for (const name of this.stateNames()) {
        const t = Tensor.empty(p.shape);
        if (p.numel) copyBuffer(this.buffer(name), t.buffer, 4 * p.numel, 4 * this.offsets[i], 0);
        s[name] = t;
        made.push(t);
      }
      state[i] = s;
    });
    const group = { ...this.hyperparameters(), params: this.params.map((_, i) => i) };
    return {
      state,
      param_groups: [group],
      [Symbol.dispose]: () => made.forEach((t) => t.dispose()),
    };
  }

  /**
   * Restores a state saved by {@link Optimizer.stateDict} (tensors, or host data from a
   * checkpoint): the step counts, the state tensors and the learning rate; continuing
   * then gives what continuing the saved optimizer would. The other hyperparameters must
   * equal this optimizer's. All or nothing: every problem is listed and nothing changes.
   * Synchronous: the copies are encoded on the GPU queue before any later step.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { optim, Tensor } from "../../mod.ts";
   * const w = Tensor.from([1, 2], { requiresGrad: true });
   * const a = new optim.Adam([w]);
   * w.sum().backward();
   * a.step();
   * const b = new optim.Adam([w]);
   * using sd = a.stateDict();
   * b.loadStateDict(sd); // b goes on where a stands
   * using sb = b.stateDict();
   * assert.equal(sb.state[0].step, 1);
   * const moment = async (s: optim.OptimizerStateDict) => (s.state[0].exp_avg as Tensor).toArray();
   * assert.deepEqual(await moment(sb), await moment(sd));
   * ```
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const problems: string[] = [];
    const group = sd.param_groups?.[0];
    if (!group || sd.param_groups.length !== 1) {
      problems.push(`expected one parameter group, got ${sd.param_groups?.length ?? "none"}`);
    } else {
      const ids = group.params;
      if (!Array.isArray(ids) || ids.length !== this.params.length) {
        problems.push(
          `the saved group has ${
            Array.isArray(ids) ? ids.length : "no"
          } parameters, this optimizer ${this.params.length}`,
        );
      }
      for (const [k, v] of Object.entries(this.hyperparameters())) {
        if (k === "lr") continue;
        if (!(k in group)) problems.push(`hyperparameter ${k} is missing`);
        else if (JSON.stringify(group[k]) !== JSON.stringify(v)) {
          problems.push(
            `${k} was ${JSON.stringify(group[k])} when saved, this optimizer has ${
              JSON.stringify(v)
            }: construct it with the saved options`,
          );
        }
      }
      if (typeof group.lr !== "number") problems.push(`lr is missing`);
    }
    for (const [key, s] of Object.entries(sd.state ?? {})) {
      const i = Number(key);
      const p = this.params[i];
      if (!p) {
        problems.push(`state for parameter ${key}, which this optimizer does not have`);
        continue;
      }
      if (!Number.isInteger(s.step) || s.step < 1) {
        problems.push(`parameter ${i}: step must be a positive integer, got ${s.step}`);
      }
      for (const name of this.stateNames()) {
        const v = s[name];
        if (typeof v !== "object" || v === null) {
          problems.push(`parameter ${i}: ${name} is missing`);
          continue;
        }
        const same = v.shape.length === p.rank && v.shape.every((d, k) => d === p.shape[k]);
        if (!same) {
          problems.push(
            `parameter ${i}: ${name} has shape ${fmt(v.shape)}, the parameter ${fmt(p.shape)}`,
          );
        } else if (v instanceof Tensor ? v.disposed : v.data?.length !== p.numel) {
          problems.push(`parameter ${i}: ${name} was disposed or has the wrong number of values`);
        }
      }
    }
    if (problems.length) {
      throw new Error(
        `${this.name}.loadStateDict failed, nothing was loaded: ${problems.join("; ")}`,
      );
    }
    this.lr = group!.lr as number;
    this.steps = this.params.map((_, i) => (sd.state[i]?.step ?? 0));
    for (const [key, s] of Object.entries(sd.state)) {
      const i = Number(key);
      const p = this.params[i];
      for (const name of this.stateNames()) {
        const v = s[name] as Tensor | HostTensor;
        if (!p.numel) continue;
        if (v instanceof Tensor) {
          copyBuffer(v.buffer, this.buffer(name), 4 * p.numel, 0, 4 * this.offsets[i]);
        } else {
          using t = Tensor.from(Float32Array.from(v.data), { shape: p.shape });
          copyBuffer(t.buffer, this.buffer(name), 4 * p.numel, 0, 4 * this.offsets[i]);
        }
      }
    }
  }

  /** Frees the flat buffers and the state (the optimizer can go on: it starts afresh). */
  dispose(): void {
    for (const b of this.#flat.values()) releaseBuffer(b);
    this.#flat.clear();
    this.steps = this.params.map(() => 0);
  }

  /** Same as {@link Optimizer.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
