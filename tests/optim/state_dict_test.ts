// Optimizer state dicts: continuing after a save and a load into a new optimizer gives, bit
// for bit, what continuing without them gives (SGD's momentum, Adam's moments and step
// counts), from tensors and from host data as a checkpoint holds it; bad states are refused
// whole.
import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Adam, AdamW } from "../../src/optim/adam.ts";
import { SGD } from "../../src/optim/sgd.ts";
import type { Optimizer, OptimizerStateDict } from "../../src/optim/optimizer.ts";
import type { HostTensor } from "../../src/nn/module.ts";

const sizes = [3, 130, 1];
const grad = (s: number, k: number, n: number) =>
  Array.from({ length: n }, (_, i) => Math.cos(i * (s + 2) + k) * (1 + s));

type Make = (ps: Tensor[]) => Optimizer;
const makers: [string, Make][] = [
  ["SGD momentum", (ps) => new SGD(ps, { lr: 0.1, momentum: 0.9, dampening: 0.2 })],
  [
    "SGD nesterov",
    (ps) => new SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
  ],
  ["Adam amsgrad", (ps) => new Adam(ps, { lr: 0.01, amsgrad: true, weightDecay: 0.1 })],
  ["AdamW", (ps) => new AdamW(ps, { lr: 0.01 })],
];

/** Steps `opt` with the gradients of steps [from, to); parameter 2 skips step 0. */
function run(opt: Optimizer, ps: Tensor[], from: number, to: number) {
  for (let s = from; s < to; s++) {
    ps.forEach((p, k) => (p.grad = s === 0 && k === 2 ? null : Tensor.from(grad(s, k, p.numel))));
    opt.step();
    opt.zeroGrad();
  }
}

/** The state dict's tensors as host data, as a checkpoint would give them back. */
async function onHost(sd: OptimizerStateDict): Promise<OptimizerStateDict> {
  const state: OptimizerStateDict["state"] = {};
  for (const [i, s] of Object.entries(sd.state)) {
    const out: Record<string, number | HostTensor> = {};
    for (const [k, v] of Object.entries(s)) {
      out[k] = v instanceof Tensor
        ? { shape: v.shape, data: Array.from(await v.toArray()) }
        : v as number;
    }
    state[Number(i)] = out as OptimizerStateDict["state"][number];
  }
  return JSON.parse(JSON.stringify({ state, param_groups: sd.param_groups }));
}

for (const [name, make] of makers) {
  for (const host of [false, true]) {
    gpuTest(
      `${name}: continuing after loadStateDict equals continuing without (${
        host ? "host data" : "tensors"
      })`,
      async () => {
        const p0 = sizes.map((n, k) => Array.from({ length: n }, (_, i) => Math.sin(i + k)));
        const a = p0.map((v) => Tensor.from(v, { requiresGrad: true }));
        const optA = make(a);
        run(optA, a, 0, 3);
        optA.lr *= 0.5; // a scheduler's change: saved too
        using sd = optA.stateDict();
        equal(sd.state[2].step, 2); // skipped the first step
        equal(sd.state[0].step, 3);
        const saved = host ? await onHost(sd) : sd;
        // a fresh optimizer over copies of the parameters, loaded from the save
        const b = await Promise.all(
          a.map(async (t) => Tensor.from(await t.toArray(), { requiresGrad: true })),
        );
        const optB = make(b);
        optB.loadStateDict(saved);
        equal(optB.lr, optA.lr);
        run(optA, a, 3, 6);
        run(optB, b, 3, 6);
        for (let k = 0; k < sizes.length; k++) {
          deepEqual(
            Array.from(await b[k].toArray()),
            Array.from(await a[k].toArray()),
            `parameter ${k}`,
          );
        }
        // the state matters: a fresh optimizer from the same parameters takes another step
        const c = await Promise.all(
          b.map(async (t) => Tensor.from(await t.toArray(), { requiresGrad: true })),
        );
        const fresh = make(c);
        fresh.lr = optB.lr;
        run(fresh, c, 6, 7);
        run(optB, b, 6, 7);
        const [got, alone] = [await b[0].toArray(), await c[0].toArray()];
        equal(got.some((v, i) => v !== alone[i]), true, "the loaded state changed the step");
        optA.dispose(), optB.dispose(), fresh.dispose();
      },
    );
  }
}

gpuTest(
  "loadStateDict refuses other hyperparameters, shapes and counts, changing nothing",
  () => {
    const w = Tensor.from([1, 2, 3], { requiresGrad: true });
    const opt = new Adam([w], { lr: 0.1 });
    w.sum().backward();
    opt.step();
    using sd = opt.stateDict();
    const other = new Adam([Tensor.zeros([3], { requiresGrad: true })], {
      lr: 0.5,
      betas: [0.8, 0.999],
    });
    throws(
      () => other.loadStateDict(sd),
      /Adam.loadStateDict failed, nothing was loaded: betas was \[0.9,0.999\] when saved, this optimizer has \[0.8,0.999\]/,
    );
    equal(other.lr, 0.5);
    const wrong = new Adam([Tensor.zeros([4], { requiresGrad: true })], { lr: 0.1 });
    throws(
      () => wrong.loadStateDict(sd),
      /parameter 0: exp_avg has shape \[3\], the parameter \[4\]/,
    );
    const two = new SGD([w, w], { lr: 0.1 });
    throws(() => two.loadStateDict(sd), /the saved group has 1 parameters, this optimizer 2/);
  },
);
