// crossEntropy checks its targets as PyTorch does (issue 25, point 6): a target that is not
// an integer in [0, C), nor the ignoreIndex, makes reading the loss throw, naming the first
// bad row and its value (PyTorch: "Target 10 is out of bounds"), with no host wait of its
// own; rows whose target is the ignoreIndex (default -100) are left out, as PyTorch's.
import { equal, ok, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { crossEntropy, TargetError } from "../../src/ops/cross_entropy/cross_entropy.ts";
import { queueStats } from "../../src/gpu/queue.ts";
import { assertClose } from "../assert_close.ts";
import {
  refCrossEntropyBackward,
  refCrossEntropyForward,
} from "../../src/ops/cross_entropy/reference.ts";
import { nn } from "../../mod.ts";

function targets(n: number, c: number, bad: Record<number, number>): Tensor {
  return Tensor.from(Array.from({ length: n }, (_, i) => bad[i] ?? i % c));
}

gpuTest(
  "reading the loss of an invalid target throws a TargetError naming the first bad row",
  async () => {
    const cases: [number, Record<number, number>, number, number][] = [
      [4, { 2: 10 }, 2, 10], // = C: PyTorch's out of bounds
      [4, { 3: -1 }, 3, -1],
      [4, { 1: 1.5, 3: 12 }, 1, 1.5], // not an integer; the first of two
      [4, { 0: NaN }, 0, NaN],
      [600, { 517: 10, 300: -3 }, 300, -3], // more rows than the kernel's threads
    ];
    for (const [n, bad, row, value] of cases) {
      const logits = Tensor.randn([n, 10], { seed: n });
      const loss = new nn.CrossEntropyLoss().forward(logits, targets(n, 10, bad));
      await rejects(loss.item(), (e: Error) => {
        ok(e instanceof TargetError, `${e}`);
        equal(
          e.message.startsWith(`crossEntropy: target[${row}] = ${value} is not a class index`),
          true,
          e.message,
        );
        ok(e.message.includes("integers in [0, 10)"), e.message);
        return true;
      }, `case ${JSON.stringify(bad)}`);
    }
  },
);

gpuTest("valid targets read back as before, in one host wait", async () => {
  const logits = Tensor.from([[0, 0], [0, 0]]);
  const loss = crossEntropy(logits, Tensor.from([0, 1]));
  const before = queueStats().submits;
  equal((await loss.item()).toFixed(4), "0.6931");
  equal(queueStats().submits - before, 1, "one submit (one host wait) for the loss and its check");
  loss.dispose();
});

gpuTest(
  "ignoreIndex rows add no loss and no gradient, and leave the mean (PyTorch's ignore_index)",
  async () => {
    const N = 7, C = 5;
    const x = Array.from({ length: N * C }, (_, i) => Math.sin(1.7 * i) * 3);
    for (
      const [ignoreIndex, t] of [[-100, [0, -100, 4, 2, -100, 1, 3]], [3, [
        0,
        3,
        4,
        2,
        3,
        1,
        0,
      ]]] as const
    ) {
      const opts = ignoreIndex === -100 ? {} : { ignoreIndex };
      const want = refCrossEntropyForward(x, t, N, C, ignoreIndex);
      // Forward, and backward seeded with 1 (the forward's saved gradient) and with 2 (the kernel).
      for (const seed of [1, 2]) {
        const logits = Tensor.from(x, { shape: [N, C], requiresGrad: true });
        const loss = crossEntropy(logits, Tensor.from([...t]), opts);
        assertClose(
          [await loss.item()],
          [want],
          { atol: 1e-5, rtol: 1e-5 },
          `loss, ignore ${ignoreIndex}`,
        );
        (seed === 1 ? loss : loss.mul(seed)).backward();
        assertClose(
          await logits.grad!.toArray(),
          refCrossEntropyBackward(x, t, N, C, seed, ignoreIndex),
          { atol: 1e-6, rtol: 1e-5 },
          `grad, ignore ${ignoreIndex}, seed ${seed}`,
        );
      }
    }
    // Every row ignored: NaN, as PyTorch's mean of nothing; not a target error.
    const all = crossEntropy(Tensor.zeros([2, 3]), Tensor.from([-100, -100]));
    ok(Number.isNaN(await all.item()));
    // -100 is only the default: with another ignoreIndex it is an invalid target again.
    await rejects(
      crossEntropy(Tensor.zeros([2, 3]), Tensor.from([0, -100]), { ignoreIndex: 2 }).item(),
      /target\[1\] = -100 is not a class index: targets must be integers in \[0, 3\) .* or the ignoreIndex 2/,
    );
  },
);
