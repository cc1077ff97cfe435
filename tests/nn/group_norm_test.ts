import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { GroupNorm } from "../../src/nn/group_norm.ts";
import { LayerNorm } from "../../src/nn/layer_norm.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import { refBatchNormForward } from "../../src/ops/batch_norm/reference.ts";
import fixture from "../fixtures/group_norm.json" with { type: "json" };

const TOL = { atol: 1e-5, rtol: 1e-5 };

gpuTest("GroupNorm defaults: per-channel weight ones and bias zeros, PyTorch names", async () => {
  const gn = new GroupNorm(2, 6);
  deepEqual(Object.keys(gn.stateDict()), ["weight", "bias"]);
  deepEqual(gn.namedParameters().map(([k]) => k), ["weight", "bias"]);
  deepEqual(Array.from(await gn.weight!.toArray()), [1, 1, 1, 1, 1, 1]);
  deepEqual(Array.from(await gn.bias!.toArray()), [0, 0, 0, 0, 0, 0]);
  deepEqual(gn.buffers(), []);
  equal(gn.numGroups, 2);
  equal(gn.numChannels, 6);
  equal(gn.eps, 1e-5);
  equal(gn.affine, true);
  equal(gn.weight!.requiresGrad, true);

  const plain = new GroupNorm(3, 3, { affine: false, eps: 1e-3 });
  deepEqual(Object.keys(plain.stateDict()), []);
  deepEqual(plain.parameters(), []);
  equal(plain.weight, null);
  equal(plain.eps, 1e-3);
});

gpuTest(
  "GroupNorm matches PyTorch fixtures through loadStateDict (forward and backward)",
  async () => {
    for (const c of fixture.group) {
      const what = `${JSON.stringify(c.shape)} G=${c.numGroups}`;
      const C = c.shape[1];
      const gn = new GroupNorm(c.numGroups, C, { eps: c.eps, affine: !!c.weight });
      if (c.weight && c.bias) {
        gn.loadStateDict({
          weight: { shape: [C], data: c.weight },
          bias: { shape: [C], data: c.bias },
        });
      }
      const x = Tensor.from(c.inp, { shape: c.shape, requiresGrad: true });
      const y = gn.forward(x);
      y.backward(Tensor.from(c.dout, c.shape));
      assertClose(await y.toArray(), c.out, TOL, `out ${what}`);
      assertClose(await x.grad!.toArray(), c.dinp, TOL, `dinp ${what}`);
      if (c.dweight) {
        assertClose(
          await gn.weight!.grad!.toArray(),
          c.dweight,
          TOL,
          `dweight ${what}`,
        );
      }
      if (c.dbias) assertClose(await gn.bias!.grad!.toArray(), c.dbias, TOL, `dbias ${what}`);
    }
  },
);

gpuTest(
  "GroupNorm's two ends: LayerNorm (one group) and InstanceNorm (a group per channel)",
  async () => {
    const shape = [3, 4, 5, 5];
    const x = Tensor.randn(shape, { seed: 1 }).mul(2).add(3);
    const xs = await x.toArray();
    // One group: LayerNorm over (C, H, W), both with their default affine maps.
    assertClose(
      await new GroupNorm(1, 4).forward(x).toArray(),
      await new LayerNorm([4, 5, 5]).forward(x).toArray(),
      { atol: 2e-6, rtol: 1e-5 },
      "G=1 vs LayerNorm",
    );
    // A group per channel: each example's channels normalized alone over H, W, which is
    // batch norm (reference) applied to a batch of that one example.
    const got = await new GroupNorm(4, 4).forward(x).toArray();
    const per = 4 * 25;
    for (let n = 0; n < 3; n++) {
      const one = refArray(xs.slice(n * per, n * per + per), [1, 4, 5, 5]);
      const want = refBatchNormForward(one, null, null, 1e-5).out.data;
      assertClose(
        got.slice(n * per, n * per + per),
        want,
        TOL,
        `G=C vs instance norm, example ${n}`,
      );
    }
  },
);

gpuTest("GroupNorm does not depend on the batch or the mode", async () => {
  const gn = new GroupNorm(3, 6);
  gn.loadStateDict({
    weight: { shape: [6], data: [1, 2, 0.5, -1, 1.5, 0.25] },
    bias: { shape: [6], data: [0, 1, -1, 0.5, 2, -0.5] },
  });
  const x = Tensor.randn([5, 6, 3, 3], { seed: 2 });
  const batch = await gn.forward(x).toArray();
  const first = await gn.forward(Tensor.from((await x.toArray()).slice(0, 54), [1, 6, 3, 3]))
    .toArray();
  assertClose(first, batch.slice(0, 54), { atol: 0, rtol: 0 }, "a batch of one");
  assertClose(await gn.eval().forward(x).toArray(), batch, { atol: 0, rtol: 0 }, "eval mode");
});

gpuTest("GroupNorm errors name the bad value and the fix", () => {
  throws(() => new GroupNorm(4, 6), {
    message: "GroupNorm: numChannels must be divisible by numGroups, got numChannels 6 and " +
      "numGroups 4; pick numGroups among the divisors of 6",
  });
  throws(() => new GroupNorm(0, 6), {
    message: "GroupNorm needs a positive integer numGroups, got 0",
  });
  throws(() => new GroupNorm(2, 6.5), {
    message: "GroupNorm needs a positive integer numChannels, got 6.5",
  });
  throws(() => new GroupNorm(2, 6).forward(Tensor.zeros([2, 4, 5, 5])), {
    message: "GroupNorm(2, 6) expects 6 channels, got input [2, 4, 5, 5]",
  });
  throws(() => new GroupNorm(2, 6).forward(Tensor.zeros([6])), {
    message: "GroupNorm(2, 6) expects input with at least 2 dimensions [N, C, *], got [6]",
  });
});
