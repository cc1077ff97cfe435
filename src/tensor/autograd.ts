/**
 * The autograd tape, micrograd-sized. Each op records its parents and a backward
 * closure on its output (see `record` in tensor.ts); {@link backward} walks the graph
 * in reverse topological order, calling each closure once with the summed gradient of
 * its output. Leaf gradients accumulate into `.grad` (as in PyTorch); intermediate
 * gradients are freed as soon as they have been propagated.
 *
 * @module
 */
import type { Tensor } from "./tensor.ts";
import { fmt } from "./shape.ts";
import { keep, tidy } from "./tidy.ts";

let enabled = true;

/** Whether ops currently record the graph. */
export function gradEnabled(): boolean {
  return enabled;
}

/**
 * Runs `fn` without recording the autograd graph (like `torch.no_grad()`).
 *
 * @example
 * ```ts
 * import { noGrad, Tensor } from "../../mod.ts";
 * const w = Tensor.ones([3], { requiresGrad: true });
 * const y = noGrad(() => w.mul(2));
 * console.log(y.requiresGrad); // false
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

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep graphs (long training unrolls) must not overflow the JS stack.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    if (i < t.parents.length) {
      top[1]++;
      const p = t.parents[i];
      if (p.requiresGrad && !seen.has(p)) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/** Back-propagates from `root`; see {@link Tensor.backward}. */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) {
    throw new Error(
      "backward() called on a tensor that does not require grad: create the inputs with " +
        "{ requiresGrad: true } and do not compute it inside noGrad()",
    );
  }
  if (!grad && root.size !== 1) {
    throw new Error(
      `backward() without a gradient needs a one-element output, got shape ${fmt(root.shape)}; ` +
        "pass the upstream gradient: y.backward(g)",
    );
  }
  if (grad && grad.size !== root.size) {
    throw new Error(
      `backward(): gradient shape ${fmt(grad.shape)} does not match output ${fmt(root.shape)}`,
    );
  }
  const Ctor = root.constructor as typeof Tensor;
  const seed = grad ? grad.reshape(root.shape) : Ctor.full(root.shape, 1);
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  const owned = new Set<Tensor>([seed]); // gradients bnlab created and may free
  const order = topoOrder(root);
  const prev = enabled;
  enabled = false; // backward closures compute with tensors; they are not recorded
  try {
    propagate(order, grads, owned);
  } finally {
    enabled = prev;
  }
}

/**
 * The reverse sweep. Each backward closure must return new tensor objects (views such as
 * `g.reshape(...)` or `g.detach()` are fine), since its input gradient is freed after.
 */
function propagate(order: Tensor[], grads: Map<Tensor, Tensor>, owned: Set<Tensor>): void {
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k];
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    if (!t.backwardFn) {
      // A leaf: accumulate into .grad, which outlives any tidy() scope.
      if (t.grad) {
        const sum = t.grad.add(g);
        t.grad.dispose();
        t.grad = keep(sum.detach());
        sum.dispose();
      } else {
        t.grad = keep(g.detach());
      }
      if (owned.has(g)) g.dispose();
      continue;
    }
    const fn = t.backwardFn;
    const pg = tidy(() => fn(g)); // frees the closure's temporaries
    if (owned.has(g)) g.dispose();
    t.parents.forEach((p, i) => {
      const gi = pg[i];
      if (!gi || !p.requiresGrad) {
        if (gi) gi.dispose();
        return;
      }
      const prev = grads.get(p);
      if (prev) {
        const sum = prev.add(gi);
        if (owned.has(prev)) prev.dispose();
        gi.dispose();
        grads.set(p, sum);
        owned.add(sum);
      } else {
        grads.set(p, gi);
        owned.add(gi);
      }
    });
  }
}
