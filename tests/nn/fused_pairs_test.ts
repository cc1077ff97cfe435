// Sequential runs BatchNorm, Conv2d or Linear + Sigmoid/ReLU as one fused kernel (Module.fusedWith):
// the same values, gradients and running statistics as the two modules one by one, and no
// fusion where the intermediate tensor must be seen (a hook, a subclass's own forward).
import { deepEqual, equal } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { copyInto, Tensor } from "../../src/tensor/tensor.ts";
import { BatchNorm1d, BatchNorm2d } from "../../src/nn/batch_norm.ts";
import { GhostBatchNorm } from "../../src/nn/ghost_batch_norm.ts";
import { ReLU, Sigmoid } from "../../src/nn/activation.ts";
import { Sequential } from "../../src/nn/sequential.ts";
import { Conv2d } from "../../src/nn/conv.ts";
import { Linear } from "../../src/nn/linear.ts";
import { conv2d } from "../../src/ops/conv2d/conv2d.ts";
import { MaxPool2d } from "../../src/nn/pooling.ts";
import type { Module } from "../../src/nn/module.ts";
import { poolSchedule } from "../../src/ops/pool/pool.ts";

/**
 * The op that makes an activation + max pool's output: the pooling kernel with the activation
 * in it where the adapter's pooling schedule has those kernels (llvmpipe's), else the
 * activation after the plain pooling (Sequential hands the pool the activation either way).
 */
const poolWith = (act: "sigmoid" | "relu") => poolSchedule().pool2 ? `maxPool2d+${act}` : act;

const TOL = { atol: 1e-6, rtol: 1e-5 };

/**
 * The input's gradient (`x`, the fused side's, against `xb`), the batch norms' weight and
 * bias gradients (then cleared) and running statistics are the same on both sides.
 */
async function sameGradients(
  [x, xb]: [Tensor, Tensor],
  [bnA, bnB]: [BatchNorm1d | BatchNorm2d, BatchNorm1d | BatchNorm2d],
  what: string,
) {
  assertClose(await x.grad!.toArray(), await xb.grad!.toArray(), TOL, `${what}: dinp`);
  for (const name of ["weight", "bias"] as const) {
    const [a, b] = [bnA[name]!.grad!, bnB[name]!.grad!];
    assertClose(await a.toArray(), await b.toArray(), TOL, `${what}: d${name}`);
    bnA[name]!.grad = null;
    bnB[name]!.grad = null;
  }
  const [sa, sb] = [bnA.stateDict(), bnB.stateDict()];
  for (const k of ["running_mean", "running_var", "num_batches_tracked"]) {
    assertClose(await sa[k].toArray(), await sb[k].toArray(), TOL, `${what}: ${k}`);
  }
}

/** Runs `pair` as Sequential and its twin module by module; compares everything. */
async function compare(
  make: () => [BatchNorm1d | BatchNorm2d, Module],
  shape: number[],
  op: string,
) {
  const [bnA, actA] = make();
  const [bnB, actB] = make();
  const fused = new Sequential(bnA, actA);
  for (const [bn, seed] of [[bnA, 1], [bnB, 1]] as const) {
    copyInto(bn.weight!, Tensor.randn([bn.numFeatures], { seed: seed + 10 }).add(1));
    copyInto(bn.bias!, Tensor.randn([bn.numFeatures], { seed: seed + 20 }));
  }
  for (const training of [true, true, false]) {
    fused.train(training);
    bnB.train(training);
    const x = Tensor.randn(shape, { seed: 3 }).mul(2).add(0.5);
    x.requiresGrad = true;
    const xb = x.detach();
    xb.requiresGrad = true;
    const g = Tensor.randn(shape, { seed: 4 });
    const yA = fused.forward(x);
    const yB = actB.forward(bnB.forward(xb));
    const what = `${op}, ${training ? "training" : "eval"} ${shape}`;
    equal(yA.gradFn?.op, op, `${what}: Sequential ran the fused kernel`);
    assertClose(await yA.toArray(), await yB.toArray(), TOL, `${what}: output`);
    yA.mul(g).sum().backward();
    yB.mul(g).sum().backward();
    await sameGradients([x, xb], [bnA, bnB], what);
  }
}

gpuTest(
  "Sequential fuses BatchNorm2d + Sigmoid: same output, gradients, running stats",
  () => compare(() => [new BatchNorm2d(3), new Sigmoid()], [4, 3, 5, 6], "batchNorm+sigmoid"),
);

gpuTest(
  "Sequential fuses BatchNorm1d + ReLU: same output, gradients, running stats",
  () => compare(() => [new BatchNorm1d(7), new ReLU()], [9, 7], "batchNorm+relu"),
);

gpuTest(
  "Sequential fuses BatchNorm1d with momentum null (cumulative average) + Sigmoid",
  () =>
    compare(
      () => [new BatchNorm1d(5, { momentum: null }), new Sigmoid()],
      [6, 5],
      "batchNorm+sigmoid",
    ),
);

gpuTest("no fusion where the intermediate must be seen: hooks, subclasses, ghost BN", async () => {
  const x = Tensor.randn([4, 3, 2, 2], { seed: 5 });
  // A hook on the activation sees BatchNorm's output, as it would without fusion.
  const bn = new BatchNorm2d(3), sig = new Sigmoid();
  const seen: Tensor[] = [];
  const handle = sig.registerForwardHook((_m, inputs) => void seen.push(inputs[0]));
  const net = new Sequential(bn, sig);
  equal(net.forward(x).gradFn?.op, "sigmoid");
  equal(seen.length, 1);
  equal(seen[0].gradFn?.op, "batchNorm");
  handle.remove();
  equal(net.forward(x).gradFn?.op, "batchNorm+sigmoid", "fused again once the hook is gone");
  // A hook on the BatchNorm itself.
  const h2 = bn.registerForwardHook(() => {});
  equal(net.forward(x).gradFn?.op, "sigmoid");
  h2.remove();
  // A subclass with its own forward, on either side.
  class Shifted extends BatchNorm2d {
    override forward(t: Tensor): Tensor {
      return super.forward(t).add(1);
    }
  }
  class Half extends Sigmoid {
    override forward(t: Tensor): Tensor {
      return super.forward(t).mul(0.5);
    }
  }
  const y1 = await new Sequential(new Shifted(3), new Sigmoid()).forward(x).toArray();
  const want1 = await new BatchNorm2d(3).forward(x).add(1).sigmoid().toArray();
  assertClose(y1, want1, TOL, "subclass BatchNorm's forward ran");
  const y2 = await new Sequential(new BatchNorm2d(3), new Half()).forward(x).toArray();
  const want2 = await new BatchNorm2d(3).forward(x).sigmoid().mul(0.5).toArray();
  assertClose(y2, want2, TOL, "subclass activation's forward ran");
  // GhostBatchNorm has its own forward (per ghost batch statistics).
  equal(new GhostBatchNorm(3, { virtualBatchSize: 2 }).fusedWith(new Sigmoid()), null);
  // Other pairs, and the activation first.
  equal(new Sigmoid().fusedWith(new BatchNorm2d(3)), null);
  deepEqual(
    new Sequential(new Sigmoid(), new BatchNorm2d(3)).forward(x).gradFn?.op,
    "batchNorm",
  );
});

gpuTest(
  "Sequential fuses Conv2d + Sigmoid: same output and gradients (plain LeNet's conv2)",
  () =>
    compareChain(
      () => [new Conv2d(6, 16, 5, { seed: 7 }), new Sigmoid()],
      [5, 6, 14, 14],
      "conv2d+sigmoid",
    ),
);

gpuTest(
  "Sequential fuses Conv2d + ReLU: same output and gradients (padded, strided, odd sizes)",
  async () => {
    await compareChain(
      () => [new Conv2d(2, 5, 3, { padding: 1, seed: 7 }), new ReLU()],
      [3, 2, 9, 11],
      "conv2d+relu",
    );
    await compareChain(
      () => [new Conv2d(3, 4, 3, { padding: 2, stride: 2, seed: 7 }), new ReLU()],
      [2, 3, 10, 7],
      "conv2d+relu",
    );
  },
);

gpuTest("conv2d refuses an unknown activation, naming it and the choices", () => {
  const x = Tensor.zeros([1, 1, 3, 3]);
  const w = Tensor.zeros([1, 1, 2, 2]);
  let msg = "";
  try {
    // @ts-expect-error: not an activation conv2d knows
    conv2d(x, w, null, { activation: "tanh" });
  } catch (e) {
    msg = (e as Error).message;
  }
  equal(msg, 'conv2d: activation must be "sigmoid" or "relu", got "tanh"');
});

gpuTest("no Conv2d fusion where the intermediate must be seen: hooks, subclasses", () => {
  const x = Tensor.randn([2, 1, 6, 6], { seed: 5 });
  const conv = new Conv2d(1, 2, 3), sig = new Sigmoid();
  const net = new Sequential(conv, sig);
  equal(net.forward(x).gradFn?.op, "conv2d+sigmoid");
  const handle = conv.registerForwardHook(() => {});
  equal(net.forward(x).gradFn?.op, "sigmoid", "a hook on the Conv2d sees its output");
  handle.remove();
  const h2 = sig.registerForwardHook(() => {});
  equal(net.forward(x).gradFn?.op, "sigmoid", "a hook on the Sigmoid sees its input");
  h2.remove();
  class Doubled extends Conv2d {
    override forward(t: Tensor): Tensor {
      return super.forward(t).mul(2);
    }
  }
  equal(new Doubled(1, 2, 3).fusedWith(new Sigmoid()), null);
  equal(new Conv2d(1, 2, 3).fusedWith(new BatchNorm2d(2)), null);
});

/**
 * The modules from `make` as Sequential and, a second set, one by one: the op that made the
 * output, the output, and every gradient (input and parameters).
 */
async function compareChain(make: () => Module[], shape: number[], op: string) {
  const mods = make();
  const fused = new Sequential(...mods);
  const twins = make();
  const x = Tensor.randn(shape, { seed: 11 }).mul(3);
  x.requiresGrad = true;
  const xb = x.detach();
  xb.requiresGrad = true;
  const yA = fused.forward(x);
  const yB = twins.reduce((t, m) => m.forward(t), xb);
  const what = `${op} ${shape}`;
  equal(yA.gradFn?.op, op, `${what}: Sequential ran the fused kernel`);
  assertClose(await yA.toArray(), await yB.toArray(), TOL, `${what}: output`);
  const g = Tensor.randn(yA.shape, { seed: 12 });
  yA.mul(g).sum().backward();
  yB.mul(g).sum().backward();
  assertClose(await x.grad!.toArray(), await xb.grad!.toArray(), TOL, `${what}: dinp`);
  const [pa, pb] = [mods, twins].map((ms) => ms.flatMap((m) => m.parameters()));
  for (let i = 0; i < pa.length; i++) {
    assertClose(
      await pa[i].grad!.toArray(),
      await pb[i].grad!.toArray(),
      TOL,
      `${what}: param ${i}`,
    );
  }
}

gpuTest(
  "Sequential fuses Sigmoid/ReLU + MaxPool2d (pooling first): same output and dinp",
  async () => {
    await compareChain(
      () => [new Sigmoid(), new MaxPool2d(2)],
      [3, 4, 10, 10],
      poolWith("sigmoid"),
    );
    await compareChain(() => [new ReLU(), new MaxPool2d(2)], [2, 3, 8, 12], poolWith("relu"));
    // a window with no fused kernel: the two ops, still one module pair
    await compareChain(
      () => [new Sigmoid(), new MaxPool2d(3, { stride: 2, padding: 1 })],
      [2, 2, 7, 7],
      "sigmoid",
    );
  },
);

gpuTest(
  "Conv2d, Sigmoid, MaxPool2d: the activation fuses with the pool, not the convolution",
  async () => {
    const make = () => [new Conv2d(2, 3, 3, { seed: 4 }), new Sigmoid(), new MaxPool2d(2)];
    await compareChain(make, [2, 2, 10, 10], poolWith("sigmoid"));
    const [conv, sig, pool] = make();
    const y = new Sequential(conv, sig, pool).forward(Tensor.randn([1, 2, 6, 6], { seed: 2 }));
    // below the pool (and the activation, where it ran after the pool)
    const below = poolSchedule().pool2 ? y.gradFn?.next[0] : y.gradFn?.next[0]?.next[0];
    equal(below?.op, "conv2d", "the convolution ran alone");
    // a hook on the pool: the activation fuses with the convolution instead
    pool.registerForwardHook(() => {});
    const z = new Sequential(conv, sig, pool).forward(Tensor.randn([1, 2, 6, 6], { seed: 2 }));
    equal(z.gradFn?.next[0]?.op, "conv2d+sigmoid");
  },
);

gpuTest(
  "Sequential fuses Linear + Sigmoid / ReLU: same output and gradients (plain LeNet's)",
  async () => {
    for (const n of [2, 130]) { // the general products, and llvmpipe's uniform chunks
      await compareChain(
        () => [new Linear(400, 120, { seed: 3 }), new Sigmoid(), new Linear(120, 84, { seed: 5 })],
        [n, 400],
        "linear",
      );
      await compareChain(
        () => [new Linear(84, 10, { seed: 6 }), new ReLU()],
        [n, 84],
        "linear+relu",
      );
    }
    const [fc, sig] = [new Linear(4, 3), new Sigmoid()];
    const y = new Sequential(fc, sig, new Linear(3, 2)).forward(Tensor.randn([2, 4], { seed: 1 }));
    equal(y.gradFn?.next[0]?.op, "linear+sigmoid", "the first pair ran as one kernel");
    sig.registerForwardHook(() => {});
    const z = new Sequential(fc, sig).forward(Tensor.randn([2, 4], { seed: 1 }));
    equal(z.gradFn?.op, "sigmoid", "a hook on the Sigmoid sees its input");
  },
);

/**
 * Sequential(BatchNorm2d, activation, MaxPool2d(2)) against the three modules one by one: the
 * same output, gradients and running statistics, in training and eval; one fused pass where
 * the pool has its kernel (llvmpipe's pool schedule, W % 4 == 0).
 */
async function compareThree(act: "sigmoid" | "relu", shape: number[]) {
  const make = () => {
    const bn = new BatchNorm2d(shape[1]);
    copyInto(bn.weight!, Tensor.randn([shape[1]], { seed: 11 }).add(1));
    copyInto(bn.bias!, Tensor.randn([shape[1]], { seed: 21 }));
    return [bn, act === "sigmoid" ? new Sigmoid() : new ReLU(), new MaxPool2d(2)] as const;
  };
  const [bnA, actA, poolA] = make();
  const [bnB, actB, poolB] = make();
  const fused = new Sequential(bnA, actA, poolA);
  deepEqual(fused.passes().map((p) => p.name), [`BatchNorm2d+${actA.constructor.name}+MaxPool2d`]);
  const fusedOp = poolSchedule().pool2 && shape[3] % 4 === 0 ? `batchNorm+${act}+maxPool2d` : null;
  for (const training of [true, true, false]) {
    fused.train(training);
    bnB.train(training);
    const x = Tensor.randn(shape, { seed: 3 }).mul(2).add(0.5);
    x.requiresGrad = true;
    const xb = x.detach();
    xb.requiresGrad = true;
    const yA = fused.forward(x);
    const yB = poolB.forward(actB.forward(bnB.forward(xb)));
    const what = `BatchNorm2d+${act}+MaxPool2d, ${training ? "training" : "eval"} ${shape}`;
    if (fusedOp) equal(yA.gradFn?.op, fusedOp, `${what}: Sequential ran the fused pass`);
    assertClose(await yA.toArray(), await yB.toArray(), TOL, `${what}: output`);
    const g = Tensor.randn(yA.shape, { seed: 4 });
    yA.mul(g).sum().backward();
    yB.mul(g).sum().backward();
    await sameGradients([x, xb], [bnA, bnB], what);
  }
}

gpuTest(
  "Sequential fuses BatchNorm2d + Sigmoid + MaxPool2d(2): same output, gradients, running stats",
  () => compareThree("sigmoid", [4, 3, 8, 12]),
);

gpuTest(
  "Sequential fuses BatchNorm2d + ReLU + MaxPool2d(2), also where the pool has no fused kernel",
  async () => {
    await compareThree("relu", [3, 2, 6, 8]);
    await compareThree("relu", [3, 2, 6, 6]); // W % 4 != 0: batch norm, then the pool
  },
);

gpuTest("Sequential keeps BatchNorm2d, activation, MaxPool2d apart where one must be seen", () => {
  const names = (...ms: Module[]) => new Sequential(...ms).passes().map((p) => p.name);
  const sig = new Sigmoid();
  sig.registerForwardHook(() => {});
  deepEqual(names(new BatchNorm2d(2), sig, new MaxPool2d(2)), [
    "BatchNorm2d",
    "Sigmoid",
    "MaxPool2d",
  ]);
  deepEqual(names(new BatchNorm2d(2), new Sigmoid(), new MaxPool2d(3)), [
    "BatchNorm2d",
    "Sigmoid+MaxPool2d",
  ]);
  deepEqual(names(new BatchNorm2d(2), new Sigmoid(), new MaxPool2d(2, { padding: 1 })), [
    "BatchNorm2d",
    "Sigmoid+MaxPool2d",
  ]);
  class Shifted extends BatchNorm2d {
    override forward(x: Tensor): Tensor {
      return super.forward(x).add(1);
    }
  }
  deepEqual(names(new Shifted(2), new Sigmoid(), new MaxPool2d(2)), [
    "Shifted",
    "Sigmoid+MaxPool2d",
  ]);
});
