// Anomaly mode (issue 25, point 8; PyTorch's detect_anomaly): the next read names the first
// op, in the order they ran, whose output was not finite, forward or backward.
import { equal, ok, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { AnomalyError, isAnomalyEnabled, setDetectAnomaly, Tensor } from "../../mod.ts";
import { queueStats } from "../../src/gpu/queue.ts";

async function withAnomaly(fn: () => Promise<void>): Promise<void> {
  setDetectAnomaly(true);
  try {
    await fn();
  } finally {
    setDetectAnomaly(false);
  }
}

gpuTest(
  "anomaly mode names the first forward op whose output is not finite",
  () =>
    withAnomaly(async () => {
      ok(isAnomalyEnabled());
      const x = Tensor.from([1, 1e10, 2]);
      // 1e10 * 1e30 overflows float32 to infinity: mul is the first op that is not finite,
      // and every op after it too. (Overflow, not log(0): SwiftShader's log(0) is -87.3.)
      const y = x.add(1).mul(1e30).sqrt().add(1).sum();
      await rejects(y.item(), (e: Error) => {
        ok(e instanceof AnomalyError, `${e}`);
        equal((e as AnomalyError).op, "mul");
        ok(e.message.includes("is mul, output [3]"), e.message);
        return true;
      });
      // Reported once: the next computation that is finite reads normally.
      equal(await x.mul(0).add(2).sum().item(), 6);
    }),
);

gpuTest(
  "anomaly mode names the op inside a backward that went non-finite",
  () =>
    withAnomaly(async () => {
      const x = Tensor.from([0, 4], { requiresGrad: true });
      x.sqrt().sum().backward(); // sqrt(0) = 0 is finite; its gradient 1 / (2 sqrt(0)) is not
      await rejects(x.grad!.toArray(), /is div \(in the backward of sqrt\), output \[2\]/);
    }),
);

gpuTest("without anomaly mode the same NaN reads back silently, as before", async () => {
  ok(!isAnomalyEnabled());
  const v = await Tensor.from([1, 1e10, 2]).mul(1e30).sum().item();
  equal(v, Infinity);
});

gpuTest("anomaly mode adds no host wait: one submit per read", () =>
  withAnomaly(async () => {
    const x = Tensor.from([1, 2, 3]);
    const before = queueStats().submits;
    equal(await x.mul(2).sum().item(), 12);
    equal(queueStats().submits - before, 1);
  }));
