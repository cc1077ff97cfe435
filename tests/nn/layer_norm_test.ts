import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { LayerNorm } from "../../src/nn/layer_norm.ts";
import fixture from "../fixtures/layer_norm.json" with { type: "json" };

const TOL = { atol: 1e-5, rtol: 1e-5 };

gpuTest(
  "LayerNorm defaults: weight ones and bias zeros of normalizedShape, PyTorch names",
  async () => {
    const ln = new LayerNorm([2, 3]);
    deepEqual(Object.keys(ln.stateDict()), ["weight", "bias"]);
    deepEqual(ln.namedParameters().map(([k]) => k), ["weight", "bias"]);
    deepEqual(ln.weight!.shape, [2, 3]);
    deepEqual(Array.from(await ln.weight!.toArray()), [1, 1, 1, 1, 1, 1]);
    deepEqual(Array.from(await ln.bias!.toArray()), [0, 0, 0, 0, 0, 0]);
    deepEqual(ln.buffers(), []);
    deepEqual(ln.normalizedShape, [2, 3]);
    equal(ln.eps, 1e-5);
    equal(ln.weight!.requiresGrad, true);
    deepEqual(new LayerNorm(120).weight!.shape, [120]);

    const plain = new LayerNorm(4, { elementwiseAffine: false, eps: 1e-3 });
    deepEqual(Object.keys(plain.stateDict()), []);
    deepEqual(plain.parameters(), []);
    equal(plain.weight, null);
    equal(plain.bias, null);
    equal(plain.eps, 1e-3);
  },
);

gpuTest(
  "LayerNorm matches PyTorch fixtures through loadStateDict (forward and backward)",
  async () => {
    for (const c of fixture.cases) {
      const what = `${JSON.stringify(c.shape)} over ${JSON.stringify(c.normalizedShape)}`;
      const ln = new LayerNorm(c.normalizedShape, { eps: c.eps, elementwiseAffine: !!c.weight });
      if (c.weight && c.bias) {
        ln.loadStateDict({
          weight: { shape: c.normalizedShape, data: c.weight },
          bias: { shape: c.normalizedShape, data: c.bias },
        });
      }
      const x = Tensor.from(c.inp, { shape: c.shape, requiresGrad: true });
      const y = ln.forward(x);
      y.backward(Tensor.from(c.dout, c.shape));
      assertClose(await y.toArray(), c.out, TOL, `out ${what}`);
      assertClose(await x.grad!.toArray(), c.dinp, TOL, `dinp ${what}`);
      if (c.dweight) {
        assertClose(
          await ln.weight!.grad!.toArray(),
          c.dweight,
          TOL,
          `dweight ${what}`,
        );
      }
      if (c.dbias) assertClose(await ln.bias!.grad!.toArray(), c.dbias, TOL, `dbias ${what}`);
    }
  },
);

gpuTest(
  "LayerNorm: same output in training and eval mode, and independent of the batch",
  async () => {
    const ln = new LayerNorm([3, 5, 5]);
    ln.loadStateDict({
      weight: { shape: [3, 5, 5], data: Array.from({ length: 75 }, (_, i) => 1 + i / 75) },
      bias: { shape: [3, 5, 5], data: Array.from({ length: 75 }, (_, i) => i / 150 - 0.2) },
    });
    const x = Tensor.randn([4, 3, 5, 5], { seed: 7 }).mul(3).add(1);
    const train = await ln.train().forward(x).toArray();
    const evalOut = await ln.eval().forward(x).toArray();
    assertClose(evalOut, train, { atol: 0, rtol: 0 }, "eval vs train");
    // A batch of one gives the same rows as the batch of four (batch norm would give bias).
    for (let n = 0; n < 4; n++) {
      const one = x.reshape([4, 75]);
      const row = Tensor.from((await one.toArray()).slice(75 * n, 75 * (n + 1)), [1, 3, 5, 5]);
      const alone = await ln.forward(row).toArray();
      assertClose(alone, train.slice(75 * n, 75 * (n + 1)), { atol: 0, rtol: 0 }, `example ${n}`);
    }
  },
);

gpuTest("LayerNorm errors name the expected and the actual shape", () => {
  throws(() => new LayerNorm([6, 24, 24]).forward(Tensor.zeros([256, 6, 12, 12])), {
    message: "LayerNorm([6, 24, 24]) expects input ending in [6, 24, 24], got [256, 6, 12, 12]",
  });
  throws(() => new LayerNorm(120).forward(Tensor.zeros([256, 84])), {
    message: "LayerNorm(120) expects input ending in [120], got [256, 84]",
  });
  throws(() => new LayerNorm([4, 4]).forward(Tensor.zeros([4])), {
    message: "LayerNorm([4, 4]) expects input ending in [4, 4], got [4]",
  });
  throws(() => new LayerNorm([]), {
    message: "LayerNorm needs a non-empty normalizedShape of positive sizes, got []",
  });
  throws(() => new LayerNorm(0), {
    message: "LayerNorm needs a non-empty normalizedShape of positive sizes, got [0]",
  });
});
