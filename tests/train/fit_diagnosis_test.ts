// Why fit stopped (issue 25, points 6 and 8): a label that is not a class index is named
// (epoch, step, row, value), not reported as a learning-rate problem; a loss that is not
// finite from the first step, with finite weights, is blamed on the data; a diverging run
// names the first layer whose weights went non-finite.
import { equal, match, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { lenet } from "../../src/models/lenet.ts";
import { DivergenceError, fit } from "../../src/train/fit.ts";
import { DataLoader, type Dataset } from "../../src/data/loader.ts";
import { TargetError } from "../../src/ops/cross_entropy/cross_entropy.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

function data(n: number, badLabel?: [number, number]): Dataset {
  const labels = new Uint8Array(n).map((_, i) => (i * 7) % 10);
  if (badLabel) labels[badLabel[0]] = badLabel[1];
  const images = new Uint8Array(n * 784).map((_, i) =>
    (labels[Math.floor(i / 784)] * 25 + i) & 0xff
  );
  return { images, labels, n, rows: 28, cols: 28 };
}

gpuTest("fit names a label out of range instead of blaming the learning rate", async () => {
  // 64 examples, batches of 8 in order: example 29 is row 5 of step 4.
  using tr = new DataLoader(data(64, [29, 10]), { batchSize: 8, shuffle: false });
  const err = await fit(lenet({ norm: "batch" }), tr, tr, { epochs: 2, lr: 0.1, init: "xavier" })
    .catch((e) => e);
  ok(err instanceof TargetError, `got ${err}`);
  match(
    err.message,
    /^fit, the batch of epoch 1, step 4: crossEntropy: target\[5\] = 10 is not a class index: targets must be integers in \[0, 10\)/,
  );
  ok(!err.message.includes("learning rate"));
});

gpuTest(
  "a loss that is not finite from the first step, weights finite, blames the data",
  async () => {
    const x = Tensor.rand([8, 1, 28, 28], { seed: 1 });
    const bad = x.mul(Tensor.from([NaN]).reshape([1, 1, 1, 1]).add(1)); // NaN everywhere
    const y = Tensor.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const loader = { length: 3, batches: () => [{ x: bad, y }, { x, y }, { x, y }] };
    const err = await fit(lenet(), loader, loader, { epochs: 1, lr: 0.1, updatesPerEpoch: 1 })
      .catch((e) => e);
    ok(err instanceof DivergenceError, `got ${err}`);
    equal(err.diagnosis?.kind, "data");
    match(err.message, /not finite from step 1 of the run, when every weight was still finite/);
    ok(!err.message.includes("lower the learning rate"), err.message);
  },
);

gpuTest("a diverging run names the first layer whose weights went non-finite", async () => {
  using tr = new DataLoader(data(64), { batchSize: 8, seed: 0 });
  const err = await fit(lenet(), tr, tr, {
    epochs: 3,
    lr: 1e30,
    updatesPerEpoch: 8,
    init: "xavier",
  })
    .catch((e) => e);
  ok(err instanceof DivergenceError, `got ${err}`);
  equal(err.diagnosis?.kind, "diverged");
  match(
    err.message,
    /lower the learning rate \(the first layer to go non-finite: \d+ \(\w+\), its \w+\)/,
  );
});
