import { ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Conv2d } from "../../src/nn/conv.ts";
import { conv2d } from "../../src/ops/conv2d/conv2d.ts";
import fx from "../fixtures/conv_pool.json" with { type: "json" };

gpuTest(
  "Conv2d with PyTorch's state dict matches PyTorch: forward and gradients (fixture)",
  async () => {
    for (const f of fx.conv) {
      const [o, c, kh, kw] = f.w_shape;
      const conv = new Conv2d(c, o, [kh, kw], {
        stride: f.stride as [number, number], // a JSON import types pairs as number[]
        padding: f.padding as [number, number],
      });
      conv.loadStateDict({
        weight: { shape: f.w_shape, data: f.w },
        bias: { shape: [o], data: f.b },
      });
      const x = Tensor.from(f.x, { shape: f.x_shape, requiresGrad: true });
      const y = conv.forward(x);
      y.backward(Tensor.from(f.dy, f.y_shape));
      const tol = { atol: 1e-5, rtol: 1e-5 };
      assertClose(await y.toArray(), f.y, tol, "y");
      assertClose(await x.grad!.toArray(), f.dx, tol, "dx");
      assertClose(await conv.weight.grad!.toArray(), f.dw, tol, "dweight");
      assertClose(await conv.bias!.grad!.toArray(), f.db, tol, "dbias");
    }
  },
);

gpuTest("Conv2d init is U(-1/sqrt(fanIn), 1/sqrt(fanIn)) as PyTorch's, seeded", async () => {
  const f = fx.conv_init;
  const bound = 1 / Math.sqrt(f.fan_in);
  const a = new Conv2d(6, 16, 5, { seed: 3 });
  ok(a.weight.shape.join() === "16,6,5,5" && a.bias!.shape.join() === "16", "shapes");
  const w = await a.weight.toArray();
  const b = await a.bias!.toArray();
  const maxAbs = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  // torch's samples reach the same bound: both within it, both close to it
  for (const [got, torch] of [[maxAbs(w), f.weight_max_abs], [maxAbs(b), f.bias_max_abs]]) {
    ok(got <= bound && torch <= bound, `max |w| ${got} (torch ${torch}) > ${bound}`);
  }
  ok(maxAbs(w) > 0.99 * bound, `weights fill the range: ${maxAbs(w)} vs ${bound}`);
  const mean = w.reduce((s, x) => s + x, 0) / w.length;
  ok(Math.abs(mean) < 0.1 * bound, `weights centred: mean ${mean}`);
  const again = new Conv2d(6, 16, 5, { seed: 3 });
  assertClose(await again.weight.toArray(), w, { atol: 0, rtol: 0 }, "same seed, same weights");
  assertClose(await again.bias!.toArray(), b, { atol: 0, rtol: 0 }, "same seed, same bias");
  const other = await new Conv2d(6, 16, 5, { seed: 4 }).weight.toArray();
  ok(other.some((v, i) => v !== w[i]), "another seed, other weights");
});

gpuTest("Conv2d options: pairs, no bias, forward equals the functional form", async () => {
  const conv = new Conv2d(3, 5, [3, 2], { stride: [2, 1], padding: [1, 0], bias: false, seed: 1 });
  ok(conv.bias === null && Object.keys(conv.stateDict()).join() === "weight", "no bias");
  ok(conv.kernelSize.join() === "3,2" && conv.stride.join() === "2,1", "pairs kept");
  const x = Tensor.randn([2, 3, 7, 6], { seed: 2 });
  const y = conv.forward(x);
  ok(y.shape.join() === "2,5,4,5", `shape ${y.shape}`);
  const want = conv2d(x, conv.weight, null, { stride: [2, 1], padding: [1, 0] });
  assertClose(await y.toArray(), await want.toArray(), { atol: 0, rtol: 0 }, "same kernel");
  const lenet = new Conv2d(1, 6, 5, { padding: 2 }).forward(Tensor.zeros([2, 1, 28, 28]));
  ok(lenet.shape.join() === "2,6,28,28", `book's padded conv1: ${lenet.shape}`);
});

gpuTest("Conv2d errors name expected and got", () => {
  const conv = new Conv2d(1, 6, 5);
  const cases: [() => unknown, string][] = [
    [
      () => conv.forward(Tensor.zeros([256, 3, 28, 28])),
      "Conv2d(1, 6, 5) expects input [N, 1, H, W], got [256, 3, 28, 28]",
    ],
    [() => conv.forward(Tensor.zeros([256, 784])), "got [256, 784]"],
    [
      () => conv.forward(Tensor.zeros([1, 1, 3, 3])),
      "kernel 5x5 is larger than the padded input 3x3",
    ],
    [() => new Conv2d(0, 6, 5), "inChannels to be a positive integer, got 0"],
    [() => new Conv2d(1, 6, 0), "kernelSize must be an integer >= 1"],
    [() => new Conv2d(1, 6, 5, { stride: [1, 0] }), "stride must be"],
  ];
  for (const [fn, want] of cases) {
    throws(fn, (e: Error) => e.message.includes(want), `an error containing "${want}"`);
  }
});
