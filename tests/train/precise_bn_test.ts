// updateBatchNormStats (PreciseBN) against float64 population statistics of the very
// activations each BatchNorm layer saw, captured with forward hooks.
import { deepEqual, equal, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { lenet } from "../../src/models/lenet.ts";
import { initXavier } from "../../src/train/fit.ts";
import { updateBatchNormStats } from "../../src/train/precise_bn.ts";
import { DataLoader } from "../../src/data/loader.ts";
import { BatchNormBase } from "../../src/nn/batch_norm.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { Sequential } from "../../src/nn/sequential.ts";
import { Linear } from "../../src/nn/linear.ts";

function data(n: number) {
  const labels = new Uint8Array(n).map((_, i) => (i * 7) % 10);
  const images = new Uint8Array(n * 784).map((_, i) => ((i * 131) ^ (i >> 5)) & 0xff);
  return { images, labels, n, rows: 28, cols: 28 };
}

gpuTest(
  "updateBatchNormStats gives the float64 population statistics of what each layer saw (#8.3)",
  async () => {
    using loader = new DataLoader(data(200), { batchSize: 64, seed: 4 }); // 64 64 64 8
    const net = lenet();
    initXavier(net, 2);
    const layers = net.modules().filter((m): m is BatchNormBase => m instanceof BatchNormBase);
    equal(layers.length, 4);
    // Capture every BN input of one training-mode pass over the loader, in float64.
    const seen = layers.map(() => [] as { data: Float32Array; shape: readonly number[] }[]);
    const reads: Promise<void>[] = [];
    const hooks = layers.map((bn, l) =>
      bn.registerForwardHook((_m, [x]) => {
        const copy = x.clone();
        reads.push(copy.toArray().then((d) => void seen[l].push({ data: d, shape: x.shape })));
      })
    );
    for (const { x } of loader.batches(0)) tidy(() => noGrad(() => net.forward(x)));
    await Promise.all(reads);
    hooks.forEach((h) => h.remove());
    const counts = await Promise.all(layers.map((bn) => bn.numBatchesTracked!.item()));

    equal(await updateBatchNormStats(net, loader), 200);
    for (const [l, bn] of layers.entries()) {
      const c = bn.numFeatures;
      const sum = new Float64Array(c), n = new Float64Array(c);
      for (const { data, shape } of seen[l]) {
        const s = shape.slice(2).reduce((a, b) => a * b, 1);
        data.forEach((v, i) => {
          const ch = Math.floor(i / s) % c;
          sum[ch] += v;
          n[ch]++;
        });
      }
      const mean = sum.map((v, i) => v / n[i]);
      const m2 = new Float64Array(c);
      for (const { data, shape } of seen[l]) {
        const s = shape.slice(2).reduce((a, b) => a * b, 1);
        data.forEach((v, i) => {
          const ch = Math.floor(i / s) % c;
          m2[ch] += (v - mean[ch]) ** 2;
        });
      }
      const variance = m2.map((v, i) => v / (n[i] - 1));
      const tol = { atol: 1e-6, rtol: 1e-4 };
      assertClose(await bn.runningMean!.toArray(), mean, tol, `layer ${l} mean`);
      assertClose(await bn.runningVar!.toArray(), variance, tol, `layer ${l} variance`);
    }
    deepEqual(
      await Promise.all(layers.map((bn) => bn.numBatchesTracked!.item())),
      counts,
      "num_batches_tracked left as it was",
    );
    equal(net.training, true, "mode restored");
  },
);

gpuTest(
  "updateBatchNormStats uses at most `batches` batches and refuses a net without BN",
  async () => {
    using loader = new DataLoader(data(100), { batchSize: 16 });
    equal(await updateBatchNormStats(lenet(), loader, { batches: 2 }), 32);
    await rejects(
      () => updateBatchNormStats(new Sequential(new Linear(2, 2)), loader),
      /no BatchNorm layer with running statistics/,
    );
  },
);
