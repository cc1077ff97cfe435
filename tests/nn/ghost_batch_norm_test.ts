import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { GhostBatchNorm } from "../../src/nn/ghost_batch_norm.ts";
import { BatchNorm1d, BatchNorm2d } from "../../src/nn/batch_norm.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import { refBatchNormForward } from "../../src/ops/batch_norm/reference.ts";
import {
  refBlockNormForward,
  refGhostRunningUpdate,
  type RefRunning,
} from "../../src/ops/block_norm/reference.ts";

const TOL = { atol: 2e-5, rtol: 1e-5 };

gpuTest(
  "GhostBatchNorm defaults: BatchNorm's parameters, buffers and state-dict names",
  async () => {
    const gbn = new GhostBatchNorm(3);
    deepEqual(Object.keys(gbn.stateDict()), [
      "weight",
      "bias",
      "running_mean",
      "running_var",
      "num_batches_tracked",
    ]);
    deepEqual(gbn.integerBuffers(), new Set(["num_batches_tracked"]));
    deepEqual(Array.from(await gbn.runningVar!.toArray()), [1, 1, 1]);
    equal(gbn.virtualBatchSize, 32);
    equal(gbn.momentum, 0.1);
    equal(gbn.eps, 1e-5);
    // A BatchNorm checkpoint loads into it, and back.
    const bn = new BatchNorm2d(3);
    bn.forward(Tensor.randn([4, 3, 2, 2], { seed: 1 })).dispose();
    gbn.loadStateDict(bn.stateDict());
    equal(await gbn.numBatchesTracked!.item(), 1);
    assertClose(await gbn.runningMean!.toArray(), await bn.runningMean!.toArray(), { atol: 0 });

    const plain = new GhostBatchNorm(4, { affine: false, trackRunningStats: false });
    deepEqual(Object.keys(plain.stateDict()), []);
    equal(plain.runningMean, null);
  },
);

gpuTest(
  "GhostBatchNorm with virtualBatchSize >= N is BatchNorm over three steps and in eval",
  async () => {
    for (const momentum of [0.1, null]) {
      for (
        const [shape, make] of [
          [[6, 3, 4, 4], (c: number) => new BatchNorm2d(c, { momentum })],
          [[9, 5], (c: number) => new BatchNorm1d(c, { momentum })],
        ] as const
      ) {
        const c = shape[1];
        const gbn = new GhostBatchNorm(c, { virtualBatchSize: 16, momentum }), bn = make(c);
        for (let k = 1; k <= 3; k++) {
          const x = Tensor.randn([...shape], { seed: k }).mul(k).add(k);
          const what = `${JSON.stringify(shape)} momentum ${momentum} step ${k}`;
          assertClose(await gbn.forward(x).toArray(), await bn.forward(x).toArray(), TOL, what);
        }
        const what = `${JSON.stringify(shape)} momentum ${momentum}`;
        assertClose(await gbn.runningMean!.toArray(), await bn.runningMean!.toArray(), TOL, what);
        assertClose(await gbn.runningVar!.toArray(), await bn.runningVar!.toArray(), TOL, what);
        equal(await gbn.numBatchesTracked!.item(), 3);
        const x = Tensor.randn([...shape], { seed: 9 });
        const [g, b] = [gbn.eval().forward(x), bn.eval().forward(x)];
        // Eval is batchNorm itself; the running statistics differ by float32 rounding.
        assertClose(await g.toArray(), await b.toArray(), TOL, `${what}: eval`);
      }
    }
  },
);

gpuTest(
  "GhostBatchNorm training steps, running statistics and eval match the reference",
  async () => {
    const shape = [70, 4, 3]; // ghost batches of 32, 32, 6
    const gbn = new GhostBatchNorm(4);
    let want: RefRunning = { mean: new Float64Array(4), var: new Float64Array(4).fill(1) };
    for (let k = 1; k <= 3; k++) {
      const x = Tensor.randn(shape, { seed: 10 + k }).mul(k).add(-k);
      const xs = refArray(await x.toArray(), shape);
      const out = await gbn.forward(x).toArray();
      assertClose(out, refBlockNormForward(xs, 32, 1, null, null, 1e-5).out.data, TOL, `step ${k}`);
      want = refGhostRunningUpdate(want, xs, 32, 0.1);
    }
    assertClose(await gbn.runningMean!.toArray(), want.mean, TOL, "running mean");
    assertClose(await gbn.runningVar!.toArray(), want.var, TOL, "running var");
    const x = Tensor.randn([3, 4, 3], { seed: 20 });
    const ref = refBatchNormForward(refArray(await x.toArray(), [3, 4, 3]), null, null, 1e-5, want);
    assertClose(
      await gbn.eval().forward(x).toArray(),
      ref.out.data,
      TOL,
      "eval: running statistics",
    );
    equal(await gbn.numBatchesTracked!.item(), 3, "eval does not count");
  },
);

gpuTest(
  "GhostBatchNorm without running statistics uses ghost batches in eval mode too",
  async () => {
    const gbn = new GhostBatchNorm(2, { virtualBatchSize: 3, trackRunningStats: false });
    const x = Tensor.randn([8, 2], { seed: 5 }).mul(3);
    const train = await gbn.forward(x).toArray();
    const evalOut = await gbn.eval().forward(x).toArray();
    const ref = refBlockNormForward(refArray(await x.toArray(), [8, 2]), 3, 1, null, null, 1e-5);
    assertClose(train, ref.out.data, TOL, "train");
    assertClose(evalOut, ref.out.data, TOL, "eval");
  },
);

gpuTest("GhostBatchNorm accepts [N, C], [N, C, L], [N, C, H, W]; errors name the fix", () => {
  const gbn = new GhostBatchNorm(4, { virtualBatchSize: 2 });
  for (const shape of [[6, 4], [6, 4, 3], [6, 4, 3, 3]]) gbn.forward(Tensor.zeros(shape)).dispose();
  throws(() => gbn.forward(Tensor.zeros([6, 4, 3, 3, 1])), {
    message: "GhostBatchNorm expects input [N, C], [N, C, L] or [N, C, H, W], got [6, 4, 3, 3, 1]",
  });
  throws(() => gbn.forward(Tensor.zeros([6, 3])), {
    message: "GhostBatchNorm(4) expects 4 channels, got input [6, 3]",
  });
  throws(() => new GhostBatchNorm(4).forward(Tensor.zeros([33, 4])), {
    message: "Expected more than 1 value per channel in each ghost batch when training, got " +
      "input size [33, 4] with virtualBatchSize 32: the last ghost batch holds 1 example; drop " +
      "that example, or pick a virtualBatchSize that leaves a remainder other than 1",
  });
  throws(() => new GhostBatchNorm(4, { virtualBatchSize: 0 }), {
    message: "GhostBatchNorm needs a positive integer virtualBatchSize, got 0",
  });
  throws(() => new GhostBatchNorm(0), /positive integer number of features, got 0/);
  // In eval mode the ghost batches play no part: a remainder of one is fine.
  new GhostBatchNorm(4).eval().forward(Tensor.zeros([33, 4])).dispose();
});
