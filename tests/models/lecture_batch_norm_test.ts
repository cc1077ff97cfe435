// The lecture's from-scratch batch_norm and BatchNorm (d2l, LECTURE.md section 6), written
// line for line in bnlab ops, dropped into LeNet with lenet({ norm: factory }) and trained
// under fit() with no keep(): its moving statistics are reassigned every step (#8).
import { equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { lenet } from "../../src/models/lenet.ts";
import { fit } from "../../src/train/fit.ts";
import { evaluateAccuracy } from "../../src/train/evaluate.ts";
import { DataLoader } from "../../src/data/loader.ts";
import { loadFashionMnist } from "../../src/data/fashion_mnist.ts";
import { BatchNorm } from "./lecture_batch_norm.ts";

const test = await loadFashionMnist({ split: "test", download: false });

gpuTest(
  "the lecture's BatchNorm trains LeNet under fit() as written, with no keep() (#8)",
  async () => {
    using tr = new DataLoader(test, { batchSize: 64, seed: 1, limit: 512 });
    using te = new DataLoader(test, { batchSize: 128, limit: 256 });
    const scratch = lenet({ norm: (c, rank) => new BatchNorm(c, rank) });
    const builtin = lenet();
    const opts = { epochs: 2, lr: 1.0, init: "xavier" as const, seed: 7, updatesPerEpoch: 4 };
    const a = await fit(scratch, tr, te, opts);
    const b = await fit(builtin, tr, te, opts);
    // Training mode computes the same thing: the same losses, to float32 noise.
    assertClose(
      a.updates.map((u) => u.windowLoss),
      b.updates.map((u) => u.windowLoss),
      { atol: 2e-3, rtol: 2e-3 },
      "per-window training loss, from scratch vs nn.BatchNorm",
    );
    ok(a.epochs[1].loss < a.epochs[0].loss, "it learns");
    // Its moving statistics moved, and prediction (noGrad) mode uses them.
    const mm = await (scratch[1] as BatchNorm).movingMean.toArray();
    ok(mm.some((v) => v !== 0) && mm.every(Number.isFinite), `moving mean ${mm}`);
    equal((scratch[1] as BatchNorm).movingMean.disposed, false);
    const acc = await evaluateAccuracy(scratch, te);
    ok(acc > 0.3, `test accuracy ${acc} with the moving statistics`);
  },
);
