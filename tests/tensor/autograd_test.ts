import { equal, ok, throws } from "node:assert/strict";
/**
 * The autograd tape: accumulation into `.grad`, shared subexpressions, `detach`, `noGrad`,
 * upstream gradients, and the errors of `backward`. Expected gradients are computed on the
 * host in float64 from the same input values.
 */
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";

const TOL = { atol: 1e-5, rtol: 1e-5 };
const X = [0.5, -1.25, 2, 3.5, -0.75, 1.5];

gpuTest("gradients accumulate into .grad across two backward calls", async () => {
  const x = Tensor.from(X, { shape: [2, 3], requiresGrad: true });
  x.square().sum().backward(); // d/dx = 2x
  assertClose(await x.grad!.toArray(), X.map((v) => 2 * v), TOL, "after one backward");
  x.mul(3).sum().backward(); // + 3
  assertClose(await x.grad!.toArray(), X.map((v) => 2 * v + 3), TOL, "after two");
  x.square().sum().backward(); // + 2x again
  assertClose(await x.grad!.toArray(), X.map((v) => 4 * v + 3), TOL, "after three");
  ok(x.grad!.shape.join() === "2,3", `grad shape [${x.grad!.shape}]`);
  x.dispose();
});

gpuTest("a tensor used twice gets the sum of both paths", async () => {
  const x = Tensor.from(X, { shape: [6], requiresGrad: true });
  x.mul(x).add(x).sum().backward(); // d/dx (x^2 + x) = 2x + 1
  assertClose(await x.grad!.toArray(), X.map((v) => 2 * v + 1), TOL, "x*x + x");
  x.dispose();

  // An intermediate node used twice: u = exp(x), y = u*u + u, dy/dx = (2u + 1) u.
  const z = Tensor.from(X, { shape: [6], requiresGrad: true });
  const u = z.exp();
  u.mul(u).add(u).sum().backward();
  const want = X.map((v) => (2 * Math.exp(v) + 1) * Math.exp(v));
  assertClose(await z.grad!.toArray(), want, TOL, "u*u + u");
  z.dispose();
  u.dispose();
});

gpuTest("detach cuts the graph and shares the data", async () => {
  const x = Tensor.from(X, { shape: [6], requiresGrad: true });
  const d = x.detach();
  ok(!d.requiresGrad && d.buffer === x.buffer, "detach should share storage, without grad");
  d.mul(x).sum().backward(); // only the x path counts: d/dx = detached value
  assertClose(await x.grad!.toArray(), X, TOL, "grad through x * x.detach()");
  x.dispose();
  assertClose(await d.toArray(), X, TOL, "detached view outlives its source");
  d.dispose();
});

gpuTest("noGrad records nothing, and restores grad mode even after a throw", async () => {
  const w = Tensor.from(X, { shape: [6], requiresGrad: true });
  const y = noGrad(() => w.mul(2));
  ok(!y.requiresGrad && y.gradFn === null, "noGrad output must not be recorded");
  throws(() => y.sum().backward(), /does not require grad/);
  throws(
    () =>
      noGrad(() => {
        throw new Error("inside");
      }),
    /inside/,
  );
  const z = w.mul(2);
  ok(z.requiresGrad, "grad mode must be back on after noGrad threw");
  assertClose(await y.toArray(), X.map((v) => 2 * v), TOL, "noGrad value");
  for (const t of [w, y, z]) t.dispose();
});

gpuTest("backward(g) takes an upstream gradient for a non-scalar output", async () => {
  const x = Tensor.from(X, { shape: [2, 3], requiresGrad: true });
  const y = x.square().mul(0.5); // dy/dx = x
  const G = [1, -2, 0.5, 3, 0.25, -1];
  y.backward(Tensor.from(G, [2, 3]));
  assertClose(await x.grad!.toArray(), X.map((v, i) => v * G[i]), TOL, "x * g");

  const x2 = Tensor.from(X, { shape: [2, 3], requiresGrad: true });
  // Without g on [2, 3]: the message names the shape and the fix.
  throws(() => x2.mul(2).backward(), /one-element output, got shape \[2, 3\].*y\.backward\(g\)/);
  throws(
    () => x2.mul(2).backward(Tensor.ones([4])),
    /gradient shape \[4\] does not match output \[2, 3\]/,
  );
  for (const t of [x, y, x2]) t.dispose();
});

gpuTest("reshape is a view: same buffer, same data, gradient flows back", async () => {
  const x = Tensor.from(X, { shape: [2, 3], requiresGrad: true });
  const r = x.reshape(3, -1);
  ok(r.shape.join() === "3,2", `reshape(3, -1) gave [${r.shape}]`);
  ok(r.buffer === x.buffer, "a reshape must share its source's buffer");
  assertClose(await r.toArray(), X, TOL, "view data");
  r.mul(Tensor.from([1, 2], [2])).sum().backward(); // column weights 1, 2 in the [3, 2] view
  assertClose(await x.grad!.toArray(), [1, 2, 1, 2, 1, 2], TOL, "grad through reshape");
  throws(() => x.reshape([4, 2]), /cannot view \[2, 3\] \(6 elements\) as \[4, 2\]/);
  x.dispose();
  assertClose(await r.toArray(), X, TOL, "a view keeps the storage alive after its source");
  r.dispose();
});

gpuTest("leaves without requiresGrad get no gradient", async () => {
  const a = Tensor.from(X, { shape: [6], requiresGrad: true });
  const b = Tensor.from(X, [6]);
  a.mul(b).sum().backward();
  ok(b.grad === null, "b does not require grad");
  assertClose(await a.grad!.toArray(), X, TOL, "d(a*b)/da = b");
  a.dispose();
  b.dispose();
});

gpuTest(
  "retainGrad keeps an intermediate's gradient; accumulates like a leaf's (#8.4)",
  async () => {
    const x = Tensor.from([1, 2, 3], { requiresGrad: true });
    const h = x.mul(2).retainGrad();
    const y = h.square().sum(); // d/dh = 2h = 4x
    y.backward();
    assertClose(await h.grad!.toArray(), [4, 8, 12], TOL, "dy/dh");
    assertClose(await x.grad!.toArray(), [8, 16, 24], TOL, "dy/dx still flows");
    throws(() => Tensor.from([1]).retainGrad(), /does not require grad/);
    const other = x.mul(3); // without retainGrad, an intermediate keeps no gradient
    other.sum().backward();
    equal(other.grad, null);
  },
);
