import { deepEqual, notDeepEqual, ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Linear } from "../../src/nn/linear.ts";
import { ReLU, Sigmoid } from "../../src/nn/activation.ts";
import { Flatten } from "../../src/nn/flatten.ts";
import { Dropout } from "../../src/nn/dropout.ts";
import { ChannelNoise } from "../../src/nn/channel_noise.ts";
import { Sequential } from "../../src/nn/sequential.ts";
import { CrossEntropyLoss } from "../../src/nn/loss.ts";
import { SGD } from "../../src/optim/sgd.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import type { Module } from "../../src/nn/module.ts";

gpuTest("Sequential names children 0, 1, ... as PyTorch, is indexable and iterable", () => {
  const net = new Sequential(new Flatten(), new Linear(12, 5), new Sigmoid(), new Linear(5, 3));
  ok(
    Object.keys(net.stateDict()).join() === "1.weight,1.bias,3.weight,3.bias",
    Object.keys(net.stateDict()).join(),
  );
  ok(net.length === 4 && net[1] instanceof Linear && net[2] instanceof Sigmoid, "index");
  ok([...net].every((m, i) => m === net[i]), "iteration order");
  ok(net.parameters().length === 4, "parameters");
  net.eval();
  ok([...net].every((m) => !m.training), "eval reaches the children");
  const y = net.forward(Tensor.randn([2, 3, 2, 2], { seed: 1 }));
  ok(y.shape.join() === "2,3", `shape ${y.shape}`);
});

gpuTest("Sequential rejects non-modules", () => {
  throws(
    () => new Sequential(new ReLU(), 3 as unknown as Module),
    /Sequential expects modules, got 3 at index 1/,
  );
});

gpuTest("Flatten merges startDim..endDim as torch.nn.Flatten, gradient flows", async () => {
  const x = Tensor.randn([2, 3, 4, 5], { seed: 2, requiresGrad: true });
  const cases: [number, number, string][] = [
    [1, -1, "2,60"],
    [0, -1, "120"],
    [1, 2, "2,12,5"],
    [-2, -1, "2,3,20"],
    [2, 2, "2,3,4,5"],
  ];
  for (const [s, e, want] of cases) {
    const y = new Flatten(s, e).forward(x);
    ok(y.shape.join() === want, `Flatten(${s}, ${e}): ${y.shape} != ${want}`);
  }
  new Flatten().forward(x).sum().backward();
  assertClose(await x.grad!.toArray(), new Float32Array(120).fill(1), {}, "grad");
  throws(() => new Flatten(3, 1).forward(x), /\[2, 3, 4, 5\]/);
});

gpuTest("ReLU and Sigmoid layers apply the fused ops", async () => {
  const x = Tensor.from([-2, 0, 3]);
  assertClose(await new ReLU().forward(x).toArray(), [0, 0, 3], { atol: 0, rtol: 0 }, "relu");
  const s = await new Sigmoid().forward(x).toArray();
  assertClose(s, [-2, 0, 3].map((v) => 1 / (1 + Math.exp(-v))), { atol: 1e-7 }, "sigmoid");
});

gpuTest("Dropout: identity in eval, a fresh mask per call in training", async () => {
  const drop = new Dropout(0.25, { seed: 3 });
  const x = Tensor.ones([4096]);
  const a = await drop.forward(x).toArray();
  const b = await drop.forward(x).toArray();
  ok(a.some((v, i) => v !== b[i]), "a new mask per call");
  drop.eval();
  ok(drop.forward(x) === x, "eval is the identity");
});

gpuTest(
  "a LeNet-head MLP trains: loss falls with Linear, Sigmoid, CrossEntropyLoss, SGD",
  async () => {
    // 64 points in 4 well-separated classes; 30 full-batch steps must cut the loss.
    const N = 64, D = 8, C = 4;
    const centers = Tensor.randn([C, D], { seed: 10 });
    const cs = await centers.toArray();
    const xs = new Float32Array(N * D), ts = new Float32Array(N);
    const noise = await Tensor.randn([N, D], { seed: 11 }).toArray();
    for (let n = 0; n < N; n++) {
      ts[n] = n % C;
      for (let d = 0; d < D; d++) xs[n * D + d] = 3 * cs[(n % C) * D + d] + 0.3 * noise[n * D + d];
    }
    const x = Tensor.from(xs, [N, D]), t = Tensor.from(ts);
    const net = new Sequential(
      new Linear(D, 16, { seed: 1 }),
      new Sigmoid(),
      new Linear(16, C, { seed: 2 }),
    );
    const lossFn = new CrossEntropyLoss();
    const opt = new SGD(net.parameters(), { lr: 0.5, momentum: 0.9 });
    const losses: Tensor[] = [];
    for (let s = 0; s < 30; s++) {
      losses.push(tidy(() => {
        opt.zeroGrad();
        const loss = lossFn.forward(net.forward(x), t);
        loss.backward();
        opt.step();
        return loss.detach();
      }));
    }
    const first = await losses[0].item(), last = await losses[29].item();
    ok(last < 0.2 * first, `loss ${first} -> ${last}`);
  },
);

gpuTest(
  "ChannelNoise: one random scale and shift per channel per step, identity in eval (#9 Noisy BN)",
  async () => {
    const noise = new ChannelNoise(3, { scale: 0.5, shift: 0.5, shiftMean: 0.2, seed: 4 });
    const x = Tensor.randn([64, 3, 5], { seed: 1 });
    const xs = await x.toArray();
    const ys = await noise.forward(x).toArray();
    // Per channel, y = a x + b with the same a and b for every example and position.
    for (let c = 0; c < 3; c++) {
      const idx = Array.from(
        { length: 64 * 5 },
        (_, k) => Math.floor(k / 5) * 15 + c * 5 + (k % 5),
      );
      const [i0, i1] = [idx[0], idx[1]];
      const a = (ys[i1] - ys[i0]) / (xs[i1] - xs[i0]), b = ys[i0] - a * xs[i0];
      assertClose(
        idx.map((i) => ys[i]),
        idx.map((i) => a * xs[i] + b),
        { atol: 1e-4, rtol: 1e-4 },
        `channel ${c}`,
      );
    }
    notDeepEqual(await noise.forward(x).toArray(), ys, "redrawn at every call");
    deepEqual(await noise.eval().forward(x).toArray(), xs);
    // Gradients flow through the input.
    const xg = Tensor.randn([4, 3, 2], { seed: 2, requiresGrad: true });
    noise.train().forward(xg).sum().backward();
    ok(xg.grad !== null);
    throws(
      () => noise.forward(Tensor.zeros([2, 4])),
      /ChannelNoise\(3\) expects input \[N, 3, \.\.\.\], got \[2, 4\]/,
    );
  },
);
