// Adam and AdamW against PyTorch (tests/fixtures/optim.py) and a float64 reference, and
// SGD's dampening and Nesterov momentum against PyTorch.
import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Adam, type AdamOptions, AdamW } from "../../src/optim/adam.ts";
import { SGD, type SGDOptions } from "../../src/optim/sgd.ts";
import { queueStats } from "../../src/gpu/queue.ts";
import fx from "../fixtures/optim.json" with { type: "json" };

/** PyTorch's Adam/AdamW (one tensor, maximize off) in float64, as plain loops. */
function refAdam(p0: number[], grads: number[][], o: Required<AdamOptions>, decoupled: boolean) {
  const p = Float64Array.from(p0);
  const n = p.length;
  const m = new Float64Array(n), v = new Float64Array(n), vmax = new Float64Array(n);
  const [b1, b2] = o.betas;
  return grads.map((grad, s) => {
    const t = s + 1;
    for (let i = 0; i < n; i++) {
      let g = grad[i];
      if (decoupled) p[i] *= 1 - o.lr * o.weightDecay;
      else g += o.weightDecay * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      vmax[i] = Math.max(vmax[i], v[i]);
      const vh = o.amsgrad ? vmax[i] : v[i];
      p[i] -= o.lr / (1 - b1 ** t) * m[i] / (Math.sqrt(vh) / Math.sqrt(1 - b2 ** t) + o.eps);
    }
    return p.slice();
  });
}

/** The fixture's snake_case options as ours. */
function options(o: Record<string, unknown>): Record<string, unknown> {
  const names: Record<string, string> = { weight_decay: "weightDecay" };
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [names[k] ?? k, v]));
}

for (const c of fx.optimizers) {
  gpuTest(
    `${c.name}(${JSON.stringify(c.options)}) matches PyTorch over 4 steps (fixture)`,
    async () => {
      const p = Tensor.from(fx.p0, { shape: fx.shape, requiresGrad: true });
      const opts = options(c.options);
      const opt = c.name === "SGD"
        ? new SGD([p], opts as unknown as SGDOptions)
        : new (c.name === "Adam" ? Adam : AdamW)([p], opts as AdamOptions);
      // PyTorch's defaults and names, as the state dict shows them
      const hyper = opt.hyperparameters();
      for (const [k, v] of Object.entries(hyper)) {
        deepEqual(v, (c.defaults as Record<string, unknown>)[k], k);
      }
      const ref = c.name === "SGD" ? null : refAdam(fx.p0, fx.grads, {
        lr: hyper.lr as number,
        betas: hyper.betas as [number, number],
        eps: hyper.eps as number,
        weightDecay: hyper.weight_decay as number,
        amsgrad: hyper.amsgrad as boolean,
      }, c.name === "AdamW");
      for (let s = 0; s < fx.grads.length; s++) {
        p.grad = Tensor.from(fx.grads[s], fx.shape);
        opt.step();
        opt.zeroGrad();
        const got = await p.toArray();
        assertClose(got, c.params[s], { atol: 1e-6, rtol: 1e-5 }, `step ${s + 1} vs torch`);
        if (ref) {
          assertClose(got, ref[s], { atol: 1e-6, rtol: 1e-5 }, `step ${s + 1} vs reference`);
        }
      }
      opt.dispose();
    },
  );
}

gpuTest(
  "Adam over parameters of odd sizes, some skipped: float64 reference, one launch a step when alike",
  async () => {
    const sizes = [1, 7, 130, 513];
    const o = {
      lr: 0.05,
      betas: [0.8, 0.95] as [number, number],
      eps: 1e-6,
      weightDecay: 0.1,
      amsgrad: true,
    };
    const p0 = sizes.map((n, k) => Array.from({ length: n }, (_, i) => Math.sin(i + k + 1)));
    const ps = sizes.map((n, k) => Tensor.from(p0[k], { shape: [n], requiresGrad: true }));
    const opt = new Adam(ps, o);
    const grads = [0, 1, 2].map((s) =>
      sizes.map((n, k) => Array.from({ length: n }, (_, i) => Math.cos(i * (s + 2) + k)))
    );
    // parameter 1 skips the first step: its own step count, and bias correction, lag
    const has = (s: number, k: number) => !(s === 0 && k === 1);
    for (let s = 0; s < 3; s++) {
      ps.forEach((p, k) => (p.grad = has(s, k) ? Tensor.from(grads[s][k], [sizes[k]]) : null));
      const before = queueStats().pendingLaunches;
      opt.step();
      // step 2: parameter 1 is at its first step, the others at their second
      equal(queueStats().pendingLaunches - before, [2, 3, 3][s], `launches at step ${s + 1}`);
      opt.zeroGrad();
    }
    for (const [k, p] of ps.entries()) {
      const mine = grads.filter((_, s) => has(s, k)).map((g) => g[k]);
      const want = refAdam(p0[k], mine, o, false).at(-1)!;
      assertClose(await p.toArray(), want, { atol: 1e-6, rtol: 1e-5 }, `parameter ${k}`);
    }
    opt.dispose();
  },
);

gpuTest("optimizers refuse bad options as PyTorch does, naming the value", () => {
  const w = [Tensor.zeros([2], { requiresGrad: true })];
  throws(
    () => new SGD(w, { lr: 0.1, nesterov: true }),
    /Nesterov momentum requires a momentum and zero dampening, got momentum 0 and dampening 0/,
  );
  throws(
    () => new SGD(w, { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }),
    /Nesterov momentum requires/,
  );
  throws(
    () => new Adam(w, { betas: [0.9, 1] }),
    /Adam needs betas in \[0, 1\), got betas\[1\] = 1/,
  );
  throws(() => new AdamW(w, { lr: -1 }), /AdamW needs a learning rate lr >= 0, got -1/);
  equal(new AdamW(w).weightDecay, 0.01);
  equal(new Adam(w).weightDecay, 0);
});
