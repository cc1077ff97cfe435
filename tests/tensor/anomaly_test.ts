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
      const x = Tensor.from([1, 0, 2]);
      const y = x.mul(3).log().mul(2).add(1).sum(); // log(0) = -inf, then every op after it
      await rejects(y.item(), (e: Error) => {
        ok(e instanceof AnomalyError, `${e}`);
        equal((e as AnomalyError).op, "log");
        ok(e.message.includes("is log, output [3]"), e.message);
        return true;
      });
      // Reported once: the next computation that is finite reads normally.
      equal(await x.add(1).sum().item(), 6);
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
  const v = await Tensor.from([1, 0, 2]).log().sum().item();
  equal(v, -Infinity);
});

gpuTest("anomaly mode adds no host wait: one submit per read", () =>
  withAnomaly(async () => {
    const x = Tensor.from([1, 2, 3]);
    const before = queueStats().submits;
    equal(await x.mul(2).sum().item(), 12);
    equal(queueStats().submits - before, 1);
  }));
