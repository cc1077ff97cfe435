import { ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Linear } from "../../src/nn/linear.ts";
import { CrossEntropyLoss } from "../../src/nn/loss.ts";
import { countCorrect } from "../../src/ops/cross_entropy/cross_entropy.ts";
import fx from "../fixtures/linear_loss.json" with { type: "json" };

gpuTest("Linear matches PyTorch: forward and gradients (fixture)", async () => {
  const f = fx.linear;
  const fc = new Linear(f.in, f.out);
  fc.loadStateDict({
    weight: { shape: [f.out, f.in], data: f.weight },
    bias: { shape: [f.out], data: f.bias },
  });
  const x = Tensor.from(f.x, { shape: [f.n, f.in], requiresGrad: true });
  const y = fc.forward(x);
  y.backward(Tensor.from(f.dy, [f.n, f.out]));
  const tol = { atol: 1e-5, rtol: 1e-5 };
  assertClose(await y.toArray(), f.y, tol, "y");
  assertClose(await x.grad!.toArray(), f.dx, tol, "dx");
  assertClose(await fc.weight.grad!.toArray(), f.dweight, tol, "dweight");
  assertClose(await fc.bias!.grad!.toArray(), f.dbias, tol, "dbias");
});

gpuTest("CrossEntropyLoss and countCorrect match PyTorch (fixture)", async () => {
  const f = fx.cross_entropy;
  const logits = Tensor.from(f.logits, { shape: [f.n, f.c], requiresGrad: true });
  const target = Tensor.from(f.target);
  const loss = new CrossEntropyLoss().forward(logits, target);
  loss.backward();
  assertClose([await loss.item()], [f.loss], { atol: 1e-6, rtol: 1e-6 }, "loss");
  assertClose(await logits.grad!.toArray(), f.dlogits, { atol: 1e-7, rtol: 1e-5 }, "dlogits");
  ok((await countCorrect(logits, target).item()) === f.correct, "correct count");
});

gpuTest("Linear init is U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's, seeded", async () => {
  const f = fx.linear_init;
  const bound = 1 / Math.sqrt(f.in);
  const a = new Linear(f.in, f.out, { seed: 5 });
  const w = await a.weight.toArray();
  const b = await a.bias!.toArray();
  const maxW = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const maxB = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  // torch's samples reach the same bound: both within it, both close to it
  for (const [got, torchMax] of [[maxW, f.weight_max_abs], [maxB, f.bias_max_abs]]) {
    ok(got <= bound && torchMax <= bound, `max |w| ${got} (torch ${torchMax}) > ${bound}`);
  }
  ok(maxW > 0.99 * bound, `weights fill the range: ${maxW} vs ${bound}`);
  const again = await new Linear(f.in, f.out, { seed: 5 }).weight.toArray();
  assertClose(again, w, { atol: 0, rtol: 0 }, "same seed, same weights");
  ok(a.weight.shape.join() === "120,256" && a.bias!.shape.join() === "120", "shapes");
});

gpuTest("Linear without bias, and on [..., in] inputs", async () => {
  const fc = new Linear(3, 2, { bias: false, seed: 1 });
  ok(fc.bias === null && Object.keys(fc.stateDict()).join() === "weight", "no bias");
  const x = Tensor.randn([2, 4, 3], { seed: 2 });
  const y = fc.forward(x);
  ok(y.shape.join() === "2,4,2", `shape ${y.shape}`);
  const flat = fc.forward(x.reshape([8, 3]));
  assertClose(await y.toArray(), await flat.toArray(), { atol: 0, rtol: 0 }, "leading dims");
});

gpuTest("Linear rejects a mismatched input with a clear error", () => {
  throws(
    () => new Linear(256, 120).forward(Tensor.zeros([4, 255])),
    /\[\.\.\., 256\].*\[4, 255\]/,
  );
});
