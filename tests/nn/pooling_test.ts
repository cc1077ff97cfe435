import { ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { AvgPool2d, MaxPool2d } from "../../src/nn/pooling.ts";
import fx from "../fixtures/conv_pool.json" with { type: "json" };

gpuTest("MaxPool2d/AvgPool2d match PyTorch: values and gradients (fixture)", async () => {
  for (const f of fx.pool) {
    const Pool = f.kind === "max" ? MaxPool2d : AvgPool2d;
    const pool = new Pool(f.kernel as [number, number], { // a JSON import types pairs as number[]
      stride: f.stride as [number, number],
      padding: f.padding as [number, number],
    });
    const x = Tensor.from(f.x, { shape: f.x_shape, requiresGrad: true });
    const y = pool.forward(x);
    y.backward(Tensor.from(f.dy, f.y_shape));
    const what = `${f.kind} kernel ${f.kernel} stride ${f.stride} padding ${f.padding}`;
    assertClose(await y.toArray(), f.y, { atol: 1e-6, rtol: 1e-6 }, `${what}: y`);
    assertClose(await x.grad!.toArray(), f.dx, { atol: 1e-6, rtol: 1e-6 }, `${what}: dx`);
  }
});

gpuTest("pooling layers: stride defaults to the kernel size, no parameters", () => {
  for (const Pool of [MaxPool2d, AvgPool2d]) {
    const p = new Pool([3, 2]);
    ok(p.stride.join() === "3,2" && p.padding.join() === "0,0", `${Pool.name} defaults`);
    ok(p.parameters().length === 0, `${Pool.name} has no parameters`);
    const y = p.forward(Tensor.zeros([2, 3, 7, 7]));
    ok(y.shape.join() === "2,3,2,3", `${Pool.name} shape ${y.shape}`);
    const lenet = new Pool(2, { stride: 2 }).forward(Tensor.zeros([4, 16, 8, 8]));
    ok(lenet.shape.join() === "4,16,4,4", `${Pool.name} LeNet shape ${lenet.shape}`);
  }
  throws(
    () => new MaxPool2d(2).forward(Tensor.zeros([256, 120])),
    /expects 4-D input \[N, C, H, W\], got \[256, 120\]/,
  );
});
