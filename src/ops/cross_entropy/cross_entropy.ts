/**
 * Softmax cross-entropy and the correct-prediction count (`cross_entropy.wgsl`): the loss
 * is one fused, numerically stable kernel with a one-kernel backward, and both results
 * stay on the GPU as 0-d tensors, so a training loop can add them up step after step
 * (`total = total.add(loss)`) and read them back a few times per epoch.
 *
 * @module
 */
import { copyBuffer, grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { isGradEnabled } from "../../tensor/autograd.ts";
import { attachReadCheck, checkTensor, isUnitSeed, record, Tensor } from "../../tensor/tensor.ts";
import { fmt } from "../../tensor/shape.ts";
import src from "./cross_entropy.wgsl" with { type: "text" };
import { TargetError } from "./target_error.ts";

export { TargetError };

const WG = 256;

/**
 * Threads of the one workgroup that reduces over N rows (forward, count_correct): N rounded up
 * to a power of two, from 8 (a vector of llvmpipe's) to {@link WG}. Every thread takes part in
 * each level of the trees, rows or not: on llvmpipe (AMD EPYC, 2 cores, GPU timestamps,
 * least of 30 interleaved rounds, 2026-12-07, 10 classes) the forward took 51 us at batch 2
 * and 57 at 8 against 116 and 119 with 256 threads (83 against 87 at 32, 137 against 140 at
 * 256).
 */
function reduceThreads(n: number): number {
  return Math.min(WG, Math.max(8, 2 ** Math.ceil(Math.log2(Math.max(1, n)))));
}

function check(what: string, logits: Tensor, target: Tensor): [number, number] {
  if (logits.rank !== 2) {
    throw new Error(`${what} expects 2-D logits [N, C], got ${fmt(logits.shape)}`);
  }
  const [N, C] = logits.shape;
  if (target.rank !== 1 || target.shape[0] !== N) {
    throw new Error(
      `${what} expects target [${N}] (one class index per row of logits ${
        fmt(logits.shape)
      }), got ${fmt(target.shape)}`,
    );
  }
  if (C === 0) throw new Error(`${what} needs at least one class, got logits ${fmt(logits.shape)}`);
  return [N, C];
}

/** Throws a {@link TargetError} for the forward's `check` values [row, target] (row -1: none). */
export function throwIfBadTarget(check: Float32Array, classes: number, ignoreIndex = -100): void {
  if (check[0] >= 0) throw new TargetError(check[0], check[1], classes, ignoreIndex);
}

function params(N: number, C: number, ignoreIndex: number): Uniforms {
  return uniforms({ n: N, c: C, ignore: ignoreIndex });
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /**
   * Rows whose target equals it add nothing to the loss nor the gradient, and the mean is
   * over the other rows (PyTorch's `ignore_index`). Default -100, as PyTorch's.
   */
  ignoreIndex?: number;
}

/**
 * Mean softmax cross-entropy of `logits` against class indices `target`
 * (PyTorch's `F.cross_entropy` with `reduction="mean"`):
 * loss = (1/N) sum_n (log sum_c exp(logits[n, c]) - logits[n, target[n]]).
 * Backward: dlogits = (softmax(logits) - onehot(target)) / N, in one kernel; the forward
 * also writes it for `loss.backward()`'s implicit gradient of 1, which then costs a copy.
 * A target that is not an integer in [0, C) gives a NaN loss, and reading the loss back
 * (`item()`, `toArray()`) throws a {@link TargetError} naming the first such row (the kernel
 * finds it; the read that returns the loss returns it too, with no host wait of its own).
 * Only `logits` receives a gradient.
 *
 * A row whose target is `ignoreIndex` (default -100, as PyTorch's) is left out of the loss,
 * the mean and the gradient; if every row is, the loss is NaN (PyTorch's too).
 *
 * Shape: logits [N, C], target [N] (f32 class indices) -> [] (0-d).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const logits = Tensor.from([[0, 0], [0, 0]]);
 * const loss = F.crossEntropy(logits, Tensor.from([0, 1]));
 * assert.ok(Math.abs(await loss.item() - Math.log(2)) < 1e-6); // 0.6931 = log 2
 * ```
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  checkTensor("crossEntropy", "input", logits);
  checkTensor("crossEntropy", "target", target);
  const [N, C] = check("crossEntropy", logits, target);
  const { ignoreIndex = -100 } = opts;
  if (!Number.isInteger(ignoreIndex)) {
    throw new Error(`crossEntropy: ignoreIndex must be an integer, got ${ignoreIndex}`);
  }
  const out = Tensor.empty([]);
  const lse = Tensor.empty([N]);
  // The gradient for dout = 1 (loss.backward()), made by the forward while it has each row's
  // lse at hand: that backward is then a copy, not a launch.
  const saved = logits.requiresGrad && isGradEnabled() && N * C > 0 ? Tensor.empty([N, C]) : null;
  // [row, its target] of the first invalid target (or [-1, 0]), and 1 / (rows not ignored)
  const firstBad = Tensor.empty([3]);
  launch({
    label: "cross_entropy.forward",
    code: src,
    entryPoint: "forward",
    overrides: { WG: reduceThreads(N), SAVE_GRAD: +(saved !== null) },
    bindings: [
      params(N, C, ignoreIndex),
      logits.buffer,
      target.buffer,
      out.buffer,
      lse.buffer,
      saved?.buffer ?? placeholder(),
      firstBad.buffer,
    ],
    workgroups: [1],
  });
  attachReadCheck(out, { data: firstBad, onRead: (v) => throwIfBadTarget(v, C, ignoreIndex) });
  const res = record(out, "crossEntropy", [logits], (dout) => {
    const dinp = Tensor.empty(logits.shape);
    if (saved && isUnitSeed(dout)) {
      copyBuffer(saved.buffer, dinp.buffer, 4 * N * C);
      return [dinp];
    }
    launch({
      label: "cross_entropy.backward",
      code: src,
      entryPoint: "backward",
      overrides: { WG },
      bindings: [
        params(N, C, ignoreIndex),
        logits.buffer,
        target.buffer,
        dout.buffer,
        lse.buffer,
        dinp.buffer,
        firstBad.buffer,
      ],
      workgroups: grid(Math.ceil((N * C) / WG)),
    });
    return [dinp];
  }, saved ? [target, lse, firstBad, saved] : [target, lse, firstBad]);
  if (!res.requiresGrad) lse.dispose(); // else the backward's cache, held by the graph
  saved?.dispose(); // held by the graph, if it recorded, until backward has run
  return res;
}

/**
 * The number of rows of `logits` whose argmax equals `target` (the first maximum on ties,
 * as `torch.argmax`), as a 0-d f32 tensor that stays on the GPU. Not differentiable.
 *
 * Shape: logits [N, C], target [N] -> [] (0-d).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const logits = Tensor.from([[2, 1], [0, 3], [5, 5]]);
 * const n = F.countCorrect(logits, Tensor.from([0, 0, 0])); // rows 0 and 2 (tie -> class 0)
 * assert.equal(await n.item(), 2);
 * ```
 */
export function countCorrect(logits: Tensor, target: Tensor): Tensor {
  checkTensor("countCorrect", "input", logits);
  checkTensor("countCorrect", "target", target);
  const [N, C] = check("countCorrect", logits, target);
  const out = Tensor.empty([]);
  launch({
    label: "cross_entropy.count_correct",
    code: src,
    entryPoint: "count_correct",
    overrides: { WG: reduceThreads(N) },
    bindings: [params(N, C, -100), logits.buffer, target.buffer, out.buffer],
    workgroups: [1],
  });
  return out;
}
