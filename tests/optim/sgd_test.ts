import { ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { SGD } from "../../src/optim/sgd.ts";
import { queueStats } from "../../src/gpu/queue.ts";
import fixture from "../fixtures/linear_loss.json" with { type: "json" };

const fx = fixture.sgd;

/** PyTorch's SGD in float64, as plain loops. */
function reference(p0: number[], grads: number[][], lr: number[], mom: number, wd: number) {
  const p = Float64Array.from(p0);
  let buf: Float64Array | null = null;
  const out: Float64Array[] = [];
  for (const [s, g] of grads.entries()) {
    const d = p.map((w, i) => g[i] + wd * w);
    if (mom !== 0) {
      buf = buf ? buf.map((b, i) => mom * b + d[i]) : d;
      for (let i = 0; i < p.length; i++) p[i] -= lr[s] * buf[i];
    } else for (let i = 0; i < p.length; i++) p[i] -= lr[s] * d[i];
    out.push(p.slice());
  }
  return out;
}

gpuTest("SGD with momentum and weight decay matches PyTorch over 3 steps (fixture)", async () => {
  const p = Tensor.from(fx.p0, { shape: fx.shape, requiresGrad: true });
  const opt = new SGD([p], { lr: fx.lr, momentum: fx.momentum, weightDecay: fx.weight_decay });
  const ref = reference(fx.p0, fx.grads, [fx.lr, fx.lr, fx.lr], fx.momentum, fx.weight_decay);
  for (let s = 0; s < 3; s++) {
    opt.zeroGrad();
    p.grad = Tensor.from(fx.grads[s], fx.shape);
    opt.step();
    const got = await p.toArray();
    assertClose(got, fx.params[s], { atol: 1e-6, rtol: 1e-6 }, `step ${s + 1} vs torch`);
    assertClose(got, ref[s], { atol: 1e-6, rtol: 1e-6 }, `step ${s + 1} vs reference`);
  }
  opt.dispose();
});

for (const n of [1, 3, 7, 513]) {
  gpuTest(`SGD variants vs float64 reference, ${n} elements, lr changed mid-run`, async () => {
    const p0 = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    const grads = [0, 1, 2].map((s) => Array.from({ length: n }, (_, i) => Math.cos(i * (s + 2))));
    for (const [mom, wd] of [[0, 0], [0, 0.1], [0.5, 0], [0.9, 0.01]]) {
      const p = Tensor.from(p0, { shape: [n], requiresGrad: true });
      const opt = new SGD([p], { lr: 0.5, momentum: mom, weightDecay: wd });
      const ref = reference(p0, grads, [0.5, 0.5, 0.1], mom, wd);
      for (let s = 0; s < 3; s++) {
        if (s === 2) opt.lr = 0.1; // a schedule: the third step uses the new rate
        p.grad = Tensor.from(grads[s], [n]);
        opt.step();
        opt.zeroGrad();
        const what = `momentum ${mom}, weight decay ${wd}, step ${s + 1}`;
        assertClose(await p.toArray(), ref[s], { atol: 1e-6, rtol: 1e-6 }, what);
      }
      opt.dispose();
    }
  });
}

gpuTest("SGD skips parameters without a gradient and zeroGrad clears them", async () => {
  const a = Tensor.from([1, 2], { requiresGrad: true });
  const b = Tensor.from([3, 4], { requiresGrad: true });
  const opt = new SGD([a, b], { lr: 1 });
  a.mul(b).sum().backward(); // da = b, db = a
  b.grad!.dispose();
  b.grad = null;
  opt.step();
  assertClose(await a.toArray(), [-2, -2], { atol: 0, rtol: 0 }, "a -= b");
  assertClose(await b.toArray(), [3, 4], { atol: 0, rtol: 0 }, "b untouched");
  opt.zeroGrad();
  ok(a.grad === null && b.grad === null, "grads cleared");
});

gpuTest(
  "SGD over several parameters: skipped ones keep their momentum's start (float64)",
  async () => {
    // steps where parameters lack a gradient: the launch runs split around them, and a
    // parameter's first momentum step is its own (buf = g), whenever it comes
    const sizes = [3, 5, 130, 1];
    const has = [[true, true, false, true], [true, true, true, true], [true, false, true, false]];
    const p0 = sizes.map((n, k) => Array.from({ length: n }, (_, i) => Math.sin(i + k + 1)));
    const [mom, wd, lr] = [0.9, 0.01, 0.3];
    const ps = sizes.map((n, k) => Tensor.from(p0[k], { shape: [n], requiresGrad: true }));
    const opt = new SGD(ps, { lr, momentum: mom, weightDecay: wd });
    const want = p0.map((a) => Float64Array.from(a));
    const bufs: (Float64Array | null)[] = sizes.map(() => null);
    for (const [s, mask] of has.entries()) {
      const grads = sizes.map((n, k) =>
        Array.from({ length: n }, (_, i) => Math.cos(i * (s + 2) + k))
      );
      ps.forEach((p, k) => {
        p.grad = mask[k] ? Tensor.from(grads[k], [sizes[k]]) : null;
        if (!mask[k]) return;
        const d = want[k].map((w, i) => grads[k][i] + wd * w);
        const b = bufs[k] ? bufs[k]!.map((v, i) => mom * v + d[i]) : d;
        bufs[k] = b;
        want[k] = want[k].map((w, i) => w - lr * b[i]);
      });
      const before = queueStats().pendingLaunches;
      opt.step();
      const launches = queueStats().pendingLaunches - before;
      // one launch per run of active parameters alike in their momentum's start
      const expected = [2, 3, 2][s];
      ok(launches === expected, `step ${s + 1}: ${launches} launches, expected ${expected}`);
      opt.zeroGrad();
      for (const [k, p] of ps.entries()) {
        assertClose(await p.toArray(), want[k], { atol: 1e-6, rtol: 1e-6 }, `step ${s + 1} p${k}`);
      }
    }
    // all active and started: one launch
    ps.forEach((p) => (p.grad = Tensor.ones(p.shape)));
    const before = queueStats().pendingLaunches;
    opt.step();
    ok(queueStats().pendingLaunches - before === 1, "a step of started parameters is one launch");
    opt.zeroGrad();
    opt.dispose();
  },
);
