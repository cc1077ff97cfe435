// crossEntropy checks its targets as PyTorch does (issue 25, point 6): a target that is not
// an integer in [0, C) makes reading the loss throw, naming the first bad row and its value
// (PyTorch: "Target 10 is out of bounds"), with no host wait of its own.
import { equal, ok, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { crossEntropy, TargetError } from "../../src/ops/cross_entropy/cross_entropy.ts";
import { queueStats } from "../../src/gpu/queue.ts";
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
