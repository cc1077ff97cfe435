/**
 * The autograd tape, micrograd-sized, and who owns what it holds.
 *
 * Each differentiable op calls {@link record} on its output: the output gets a
 * {@link Node} (PyTorch's `grad_fn`) holding the op's name, the nodes its gradient flows
 * to, a backward closure, and the tensors that closure reads ("saved" tensors: the op's
 * inputs and any cache such as batch norm's mean and rstd). {@link backward} walks the
 * nodes in reverse topological order, calling each closure once with the summed gradient
 * of its output. Leaf gradients accumulate into `.grad` (as in PyTorch); intermediate
 * gradients are freed as soon as they have been propagated.
 *
 * Ownership. A saved tensor is *held* by its node: disposing it (by hand or by `tidy()`)
 * only gives up the caller's handle, and its memory stays until the node is released.
 * That is what lets a result returned from `tidy()` still be differentiated. A node is
 * released, and its holds dropped, when `backward()` has run through it (unless asked to
 * `retainGraph`, as PyTorch's `retain_graph=False` default), or when the tensor it
 * belongs to is freed. A second backward through a released node throws, as PyTorch does.
 *
 * In-place writes (an optimizer step, running statistics, loading a state dict) bump a
 * tensor's `version`; a node remembers the version of each saved tensor and its
 * backward refuses to run on data that changed since the forward, instead of computing a
 * silently wrong gradient.
 *
 * This module knows tensors only through the {@link Variable} interface, so it imports
 * nothing from `tensor.ts`.
 *
 * @module
 */
import { keep, tidy } from "./tidy.ts";
import { addAfterWait } from "../gpu/queue.ts";
import { checkFinite, inContext } from "./anomaly.ts";

/** What anomaly mode checks of a gradient (a Tensor, seen structurally: no import cycle). */
type Checked = Parameters<typeof checkFinite>[1];

let enabled = true;
// After a host wait no noGrad() or backward() can be running: recording still off was left
// so by an interrupt.
addAfterWait(() => {
  if (!enabled) resetGradModeAfterInterrupt();
});

/**
 * Whether ops currently record the autograd graph (false inside {@link noGrad}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isGradEnabled, noGrad } from "../../mod.ts";
 * assert.deepEqual([isGradEnabled(), noGrad(() => isGradEnabled())], [true, false]);
 * ```
 */
export function isGradEnabled(): boolean {
  return enabled;
}

/**
 * Turns recording back on after an interrupted run left it off (an interrupt skips the
 * `finally` of {@link noGrad} and of `backward`). Only for a caller that runs between two
 * synchronous runs (a timer), where no `noGrad` can legitimately be open.
 */
export function resetGradModeAfterInterrupt(): void {
  enabled = true;
}

/**
 * Runs `fn` without recording the autograd graph (like `torch.no_grad()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { noGrad, Tensor } from "../../mod.ts";
 * const w = Tensor.ones([3], { requiresGrad: true });
 * const y = noGrad(() => w.mul(2));
 * assert.equal(y.requiresGrad, false);
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/** What the tape needs of a tensor; `Tensor` implements it. */
export interface Variable<T extends Variable<T>> {
  /** Sizes of each dimension. */
  readonly shape: readonly number[];
  /** Whether gradients flow to it. */
  requiresGrad: boolean;
  /** The accumulated gradient of a leaf. */
  grad: T | null;
  /** The node of the op that produced it; null for a leaf. */
  readonly gradFn: Node<T> | null;
  /** How many in-place writes its data has seen. */
  readonly version: number;
  /** A short description for messages, e.g. `[6] (op sigmoid)`. */
  describe(): string;
  /** Elementwise sum (accumulating gradients). */
  add(other: T): T;
  /** The same data, cut from the graph. */
  detach(): T;
  /** Gives up this handle. */
  dispose(): void;
}

/**
 * Keeps a tensor's memory for a node that reads it (even if the tensor is disposed
 * meanwhile); returns the function that gives the hold up.
 */
export type Hold<T> = (t: T) => () => void;

/** Computes the gradient of each input of an op from the gradient of its output. */
export type BackwardFn<T> = (dout: T) => (T | null)[];

/**
 * The tensors a node reads in its backward, held (kept from being freed) until released,
 * with the version each had when it was saved. Separate from the node so that a
 * garbage-collected tensor can release its node's holds without keeping the node (and
 * its closure, which may read the tensor itself) alive.
 */
export class Holds<T extends Variable<T>> {
  #items: { t: T; version: number; release: () => void }[];

  /** Holds each of `saved` with `hold`. */
  constructor(saved: readonly T[], hold: Hold<T>) {
    this.#items = saved.map((t) => ({ t, version: t.version, release: hold(t) }));
  }

  /** Throws if a held tensor was written in place since it was saved. */
  check(op: string): void {
    for (const { t, version } of this.#items) {
      if (t.version === version) continue;
      throw new Error(
        `backward(): a tensor ${t.describe()} that ${op} saved for its gradient was ` +
          `modified in place after the forward (version ${t.version}, saved at ${version}), ` +
          "so the gradient would be wrong. In-place writes are optimizer steps, training-mode " +
          "batch norm (running statistics), init and loadStateDict: do them after backward(), " +
          "or run the forward again.",
      );
    }
  }

  /** Gives up every hold. Idempotent. */
  release(): void {
    const items = this.#items;
    this.#items = [];
    for (const { release } of items) release();
  }
}

/**
 * One recorded op (PyTorch's `grad_fn`): where the output's gradient goes. `next[i]` is
 * the node of input i (the op that made it, or the leaf's accumulator), or null when no
 * gradient is wanted there.
 */
export class Node<T extends Variable<T>> {
  /** The op's name, e.g. `"mul"`, `"batchNorm"`, or `"AccumulateGrad"` for a leaf. */
  readonly op: string;
  #holds: Holds<T> | null;
  #next: (Node<T> | null)[];
  #backward: BackwardFn<T> | null;
  #leaf: T | null;
  #retained: T | null = null;
  #released = false;

  /**
   * A node for `op` holding `holds` (use {@link record}); without them (`null`) and with
   * `leaf`, the accumulator of a leaf.
   */
  constructor(
    op: string,
    next: (Node<T> | null)[],
    backward: BackwardFn<T> | null,
    holds: Holds<T> | null,
    leaf: T | null = null,
  ) {
    this.op = op;
    this.#next = next;
    this.#backward = backward;
    this.#holds = holds;
    this.#leaf = leaf;
  }

  /** The nodes the gradient flows to (empty once released). */
  get next(): readonly (Node<T> | null)[] {
    return this.#next;
  }

  /** True once backward ran through it (without `retainGraph`) or its output was freed. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Also accumulates the gradient flowing into this node into `t.grad` (PyTorch's
   * `retain_grad()` on the node's output `t`), for looking at an intermediate's gradient.
   */
  retainGrad(t: T): void {
    this.#retained = t;
  }

  /** Drops the closure and the holds on saved tensors. Idempotent. */
  release(): void {
    if (this.#released || this.#leaf) return; // a leaf's accumulator lives with the leaf
    this.#released = true;
    this.#backward = null;
    this.#retained = null;
    this.#next = [];
    this.#holds?.release();
  }

  /** Runs the backward closure (or accumulates into the leaf) with upstream gradient `g`. */
  apply(g: T): (T | null)[] {
    if (this.#leaf) {
      accumulate(this.#leaf, g);
      return [];
    }
    if (this.#retained) accumulate(this.#retained, g);
    if (this.#released || !this.#backward) throw new Error(secondBackward(this.op));
    this.#holds?.check(this.op);
    const fn = this.#backward;
    const grads = inContext(`the backward of ${this.op}`, () => tidy(() => fn(g))); // frees the closure's temporaries
    for (const d of grads) if (d) checkFinite(`${this.op} (backward)`, d as unknown as Checked);
    return grads;
  }
}

function secondBackward(op: string): string {
  return `backward(): trying to backward through ${op} a second time, but its saved tensors ` +
    "were freed by the first backward(). Pass { retainGraph: true } to the first backward() " +
    "to keep the graph, or run the forward again.";
}

/** `leaf.grad += g` (a new `.grad` the first time), outliving any `tidy()` scope. */
function accumulate<T extends Variable<T>>(leaf: T, g: T): void {
  if (leaf.grad) {
    const sum = leaf.grad.add(g);
    leaf.grad.dispose();
    leaf.grad = keep(sum.detach());
    sum.dispose();
  } else {
    leaf.grad = keep(g.detach());
  }
}

const leafNodes = new WeakMap<object, Node<never>>();

/** The node a gradient for `t` flows into: its op's node, or its leaf accumulator. */
function nodeOf<T extends Variable<T>>(t: T): Node<T> | null {
  if (!t.requiresGrad) return null;
  if (t.gradFn) return t.gradFn;
  let n = leafNodes.get(t) as Node<T> | undefined;
  if (!n) {
    n = new Node<T>("AccumulateGrad", [], null, null, t);
    leafNodes.set(t, n as unknown as Node<never>);
  }
  return n;
}

/**
 * Records `out` as produced by `op` from `inputs`, with gradient `backward` (one gradient
 * per input, in order), when grad mode is on and some input requires grad. `saved` are
 * the tensors the closure reads besides `inputs` and `out` (caches made by the op); the
 * node holds them with `hold`, like the inputs. `attach` gives `out` its node and the
 * holds (to release if `out` is garbage-collected). Returns the node, or null when
 * nothing was recorded (then the op disposes its caches itself).
 */
export function record<T extends Variable<T>>(
  out: T,
  op: string,
  inputs: readonly T[],
  backward: BackwardFn<T>,
  saved: readonly T[],
  hold: Hold<T>,
  attach: (node: Node<T>, holds: Holds<T>) => void,
): Node<T> | null {
  if (!enabled || !inputs.some((p) => p.requiresGrad)) return null;
  const holds = new Holds([...inputs, ...saved], hold);
  const node = new Node<T>(op, inputs.map(nodeOf), backward, holds);
  out.requiresGrad = true;
  attach(node, holds);
  return node;
}

/** Options of {@link backward}. */
export interface BackwardOptions {
  /**
   * Keep the graph (its closures and saved tensors) for another backward through it.
   * Default false: the graph is freed as it is used (PyTorch's `retain_graph=False`).
   */
  retainGraph?: boolean;
}

/** The op nodes reachable from `root`, in topological order (inputs first). */
function topoOrder<T extends Variable<T>>(root: Node<T>): Node<T>[] {
  const order: Node<T>[] = [];
  const seen = new Set<Node<T>>([root]);
  // Iterative DFS: deep graphs (long training unrolls) must not overflow the JS stack.
  const stack: [Node<T>, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [n, i] = top;
    if (n.released) throw new Error(secondBackward(n.op));
    if (i < n.next.length) {
      top[1]++;
      const p = n.next[i];
      if (p && !seen.has(p)) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(n);
    }
  }
  return order;
}

/**
 * Back-propagates from `root` (see `Tensor.backward`): `seed` is d(loss)/d(root), owned
 * (and freed) by this function.
 */
export function backward<T extends Variable<T>>(
  root: T,
  seed: T,
  { retainGraph = false }: BackwardOptions = {},
): void {
  if (!root.requiresGrad) {
    seed.dispose();
    throw new Error(
      "backward() called on a tensor that does not require grad: create the inputs with " +
        "{ requiresGrad: true } and do not compute it inside noGrad()",
    );
  }
  const start = nodeOf(root)!;
  let order: Node<T>[];
  try {
    order = topoOrder(start);
  } catch (e) {
    seed.dispose();
    throw e;
  }
  const grads = new Map<Node<T>, T>([[start, seed]]);
  const prev = enabled;
  enabled = false; // backward closures compute with tensors; they are not recorded
  try {
    for (let k = order.length - 1; k >= 0; k--) {
      const n = order[k];
      const g = grads.get(n);
      if (!g) continue;
      grads.delete(n);
      let pg: (T | null)[];
      try {
        pg = n.apply(g);
      } finally {
        g.dispose();
      }
      n.next.forEach((p, i) => {
        const gi = pg[i];
        if (!gi) return;
        if (!p) return gi.dispose();
        const acc = grads.get(p);
        if (acc) {
          grads.set(p, acc.add(gi));
          acc.dispose();
          gi.dispose();
        } else grads.set(p, gi);
      });
    }
  } finally {
    enabled = prev;
    for (const g of grads.values()) g.dispose();
    // Released only now: a node's holds keep its inputs alive for their own backward.
    if (!retainGraph) { for (const n of order) n.release(); }
  }
}
