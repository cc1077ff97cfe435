// Module: state dicts with one ownership rule, an all-or-nothing synchronous load, forward
// hooks, namedModules, disposal, and registered tensors that survive reassignment.
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { memoryStats } from "../../src/gpu/buffer_pool.ts";
import { Module } from "../../src/nn/module.ts";
import { Linear } from "../../src/nn/linear.ts";
import { Sigmoid } from "../../src/nn/activation.ts";
import { Sequential } from "../../src/nn/sequential.ts";
import { BatchNorm1d } from "../../src/nn/batch_norm.ts";
import { lenet } from "../../src/models/lenet.ts";
import { SGD } from "../../src/optim/sgd.ts";

/** Every parameter and buffer of `net`, read back, by name. */
async function snapshot(net: Module): Promise<Record<string, number[]>> {
  using sd = net.stateDict();
  const out: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(sd)) out[k] = Array.from(await t.toArray());
  return out;
}

gpuTest(
  "loadStateDict is all or nothing for tensor inputs: a disposed source changes nothing (#6.4)",
  async () => {
    const target = lenet(), source = lenet();
    const before = await snapshot(target);
    using sd = source.stateDict();
    const state: Record<string, Tensor> = { ...sd };
    state["4.weight"] = state["4.weight"].clone();
    state["4.weight"].dispose(); // the third entry of the file order fails
    throws(
      () => target.loadStateDict(state),
      /loadStateDict failed for Sequential, nothing was loaded: bad entries: 4\.weight: the source tensor was disposed/,
    );
    deepEqual(await snapshot(target), before, "no entry was overwritten");
    // The next ordinary operation works.
    target.loadStateDict(sd);
    deepEqual(await snapshot(target), await snapshot(source));
  },
);

gpuTest("loadStateDict checks host data against the shape (#6.4)", async () => {
  const bn = new BatchNorm1d(6);
  const before = await snapshot(bn);
  throws(
    () =>
      bn.loadStateDict({
        weight: { shape: [6], data: [1, 2, 3] },
        bias: { shape: [6], data: new Array(6).fill(0) },
        running_mean: { shape: [6], data: new Array(6).fill(0) },
        running_var: { shape: [6], data: new Array(6).fill(1) },
        num_batches_tracked: { shape: [], data: [0] },
      }),
    /weight: shape \[6\] needs 6 values, the data has 3/,
  );
  deepEqual(await snapshot(bn), before);
});

gpuTest(
  "loadStateDict is synchronous: the next forward sees the loaded values (#6.4, #7)",
  async () => {
    const a = new Linear(3, 2, { seed: 1 }), b = new Linear(3, 2, { seed: 2 });
    const x = Tensor.randn([4, 3], { seed: 3 });
    const want = await a.forward(x).toArray();
    using sd = a.stateDict();
    const result = b.loadStateDict(sd);
    equal(result, undefined, "not a promise that could be forgotten");
    assertClose(await b.forward(x).toArray(), want, { atol: 0, rtol: 0 }, "forward right after");
  },
);

gpuTest(
  "stateDict hands out views the caller owns; disposing them never frees the module (#7)",
  async () => {
    const net = new Sequential(new Linear(3, 2, { seed: 1 }), new BatchNorm1d(2));
    const before = await snapshot(net);
    const sd = net.stateDict();
    deepEqual(Object.keys(sd), [
      "0.weight",
      "0.bias",
      "1.weight",
      "1.bias",
      "1.running_mean",
      "1.running_var",
      "1.num_batches_tracked",
    ]);
    ok(Object.values(sd).every((t) => t instanceof Tensor), "every entry is a tensor");
    sd[Symbol.dispose]();
    ok(Object.values(sd).every((t) => t.disposed));
    deepEqual(await snapshot(net), before, "the module's tensors are intact");
    // The views share memory: a training step shows in a state dict taken before it.
    using live = net.stateDict();
    net.forward(Tensor.randn([4, 3], { seed: 2 }));
    equal(await live["1.num_batches_tracked"].item(), 1);
  },
);

gpuTest("Module and SGD free their GPU memory with dispose() / using (#7)", () => {
  const live0 = memoryStats().liveBytes;
  {
    using net = lenet();
    using opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
    ok(memoryStats().liveBytes > live0);
    tidy(() => {
      net.forward(Tensor.zeros([2, 1, 28, 28])).sum().backward();
      opt.step(); // allocates the momentum buffers
    });
    net.zeroGrad();
  }
  equal(memoryStats().liveBytes, live0, "parameters, buffers and momentum all freed");
});

gpuTest("namedModules lists the module and every descendant with dotted names (#8)", () => {
  const net = new Sequential(new Sequential(new Linear(2, 2), new Sigmoid()), new Linear(2, 1));
  deepEqual(
    net.namedModules().map(([k, m]) => `${k}:${m.constructor.name}`),
    ["", "0", "0.0", "0.1", "1"].map((k, i) =>
      `${k}:${["Sequential", "Sequential", "Linear", "Sigmoid", "Linear"][i]}`
    ),
  );
  equal(net.modules().length, 5);
});

gpuTest("forward hooks see inputs and output, may replace it, and are removable (#8)", async () => {
  const net = new Sequential(new Linear(3, 2, { seed: 0 }), new Sigmoid());
  const seen: string[] = [];
  const h1 = net[0].registerForwardHook((m, inputs, out) => {
    seen.push(`${m.constructor.name} ${inputs[0].shape} -> ${out.shape}`);
  });
  const h2 = net[1].registerForwardHook((_m, _inputs, out) => out.mul(0)); // replaces
  const y = net.forward(Tensor.ones([5, 3]));
  deepEqual(seen, ["Linear 5,3 -> 5,2"]);
  deepEqual(Array.from(await y.toArray()), new Array(10).fill(0));
  h1.remove();
  h2.remove();
  h2.remove(); // idempotent
  net.forward(Tensor.ones([5, 3]));
  equal(seen.length, 1, "removed hooks no longer run");
  ok(!Object.hasOwn(net[0], "forward"), "no wrapper left behind");
});

/** The lecture's BatchNorm, reassigning its moving statistics each step. */
class LectureBatchNorm extends Module {
  gamma = this.registerParameter("gamma", Tensor.ones([1, 2]));
  beta = this.registerParameter("beta", Tensor.zeros([1, 2]));
  movingMean = this.registerBuffer("movingMean", Tensor.zeros([1, 2]));
  forward(x: Tensor): Tensor {
    const mean = x.mean(0, true);
    this.movingMean = this.movingMean.mul(0.9).add(mean.mul(0.1));
    return x.sub(mean).mul(this.gamma).add(this.beta);
  }
}

gpuTest(
  "assigning to a registered buffer keeps the new tensor beyond tidy and frees the old (#8.7)",
  async () => {
    const bn = new LectureBatchNorm();
    const x = Tensor.from([[1, 2], [3, 6]]);
    for (let i = 0; i < 3; i++) tidy(() => bn.forward(x)); // as fit() runs each step
    // 0.1 * 2 * (1 - 0.9^3) and 0.1 * 4 * (1 - 0.9^3)
    assertClose(
      await bn.movingMean.toArray(),
      [0.5420, 1.0840],
      { atol: 1e-6, rtol: 1e-5 },
      "mean",
    );
    using sd = bn.stateDict();
    deepEqual(Object.keys(sd), ["gamma", "beta", "movingMean"]);
    equal(bn.movingMean.requiresGrad, false, "a buffer is cut from the graph");
    throws(() => {
      (bn as unknown as { movingMean: unknown }).movingMean = 3;
    }, /Cannot assign number to buffer "movingMean": a Tensor or null is expected/);
  },
);
