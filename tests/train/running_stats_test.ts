// RunningStatsFilters: several running estimates from the same batches, each checked
// against what it must equal: the layer's own (momentum 0.1), and the plain average of
// the batch statistics (gain 1/k).
import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { lenet } from "../../src/models/lenet.ts";
import { BatchNormBase } from "../../src/nn/batch_norm.ts";
import { Linear } from "../../src/nn/linear.ts";
import { RunningStatsFilters } from "../../src/train/running_stats.ts";

gpuTest(
  "RunningStatsFilters: momentum 0.1 equals the layers' own, 1/k the average of batch means",
  async () => {
    const net = lenet();
    const layers = net.modules().filter((m): m is BatchNormBase => m instanceof BatchNormBase);
    using filters = new RunningStatsFilters(net, [0.1, null, 0.5]);
    const reads: Promise<Float32Array>[] = [];
    const hook = layers[0].registerForwardHook((_m, [x]) => {
      reads.push(tidy(() => x.mean([0, 2, 3]).clone()).toArray());
    });
    for (let k = 0; k < 4; k++) tidy(() => net.forward(Tensor.rand([16, 1, 28, 28], { seed: k })));
    hook.remove();
    equal(filters.steps, 4);
    const own = await Promise.all(layers.map((bn) => bn.runningVar!.toArray()));
    filters.use(0.1);
    for (const [l, bn] of layers.entries()) {
      assertClose(await bn.runningVar!.toArray(), own[l], { atol: 1e-6, rtol: 1e-5 }, `layer ${l}`);
    }
    filters.use(null);
    const means = await Promise.all(reads);
    const average = means[0].map((_, c) => means.reduce((a, m) => a + m[c], 0) / 4);
    assertClose(await layers[0].runningMean!.toArray(), average, { atol: 1e-6, rtol: 1e-5 }, "1/k");
    filters.restore();
    deepEqual(await layers[1].runningVar!.toArray(), own[1], "restore puts the layers' own back");
    // A training-mode pass without gradients (an evaluation, PreciseBN) is not a step.
    tidy(() => noGrad(() => net.forward(Tensor.rand([16, 1, 28, 28], { seed: 9 }))));
    equal(filters.steps, 4);
    throws(() => filters.estimate(0.3, 0), /no filter with gain 0.3/);
    throws(() => new RunningStatsFilters(new Linear(2, 2), [0.1]), /no BatchNorm layer/);
    throws(
      () => new RunningStatsFilters(net, [1.5]),
      /a gain is a momentum in \(0, 1\] or null, got 1.5/,
    );
  },
);
