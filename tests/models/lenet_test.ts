import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { lenet, type LeNetOptions } from "../../src/models/lenet.ts";
import { LayerNorm } from "../../src/nn/layer_norm.ts";
import { BatchNorm2d } from "../../src/nn/batch_norm.ts";
import type { Module } from "../../src/nn/module.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import fixture from "../fixtures/lenet.json" with { type: "json" };

const variants: [string, LeNetOptions][] = [
  ["batch", { norm: "batch" }],
  ["none", { norm: "none" }],
  ["layer", { norm: "layer" }],
  ["batch_avg_relu", { norm: "batch", pool: "avg", activation: "relu" }],
];

for (const [name, opts] of variants) {
  gpuTest(`lenet(${JSON.stringify(opts)}) has PyTorch's state-dict names and shapes`, () => {
    const net = lenet(opts);
    const want = (fixture as unknown as Record<string, [string, number[], string][]>)[name];
    const sd = net.stateDict();
    const got = Object.entries(sd).map(([k, t]) => [k, [...t.shape]]);
    deepEqual(got, want.map(([k, shape]) => [k, shape]));
    const params = net.parameters().reduce((a, p) => a + p.numel, 0);
    const counts = fixture.params as Record<string, number>;
    if (name in counts) equal(params, counts[name], "parameter count");
  });
}

for (const [name, opts] of variants) {
  gpuTest(`lenet ${name}: [N, 1, 28, 28] -> [N, 10] in training and eval mode`, async () => {
    const net = lenet(opts);
    for (const training of [true, false]) {
      net.train(training);
      const y = tidy(() => net.forward(Tensor.rand([3, 1, 28, 28], { seed: 7 })));
      deepEqual(y.shape, [3, 10]);
      const v = await y.toArray();
      equal(v.every(Number.isFinite), true, "finite logits");
      y.dispose();
    }
  });
}

gpuTest("lenet rejects unknown options, naming the value", () => {
  throws(
    () => lenet({ norm: "instance" as "batch" }),
    /norm must be "batch", "layer", "group", "ghost", "none" or a function \(channels, rank\) => Module, got "instance"/,
  );
  throws(() => lenet({ norm: () => 3 as unknown as Module }), /must return a Module, got 3/);
  throws(() => lenet({ dropout: 1 }), /dropout must be a probability in \[0, 1\), got 1/);
  throws(() => lenet({ pool: "min" as "max" }), /pool must be "max" or "avg"/);
  throws(() => lenet({ activation: "tanh" as "relu" }), /activation must be "sigmoid" or "relu"/);
});

gpuTest(
  "lenet takes a normalization factory (channels, rank) and a dropout probability (#8.6)",
  () => {
    const calls: string[] = [];
    const net = lenet({
      norm: (c, rank) => {
        calls.push(`${c}/${rank}`);
        return rank === 4 ? new BatchNorm2d(c) : new LayerNorm(c);
      },
      dropout: 0.5,
    });
    deepEqual(calls, ["6/4", "16/4", "120/2", "84/2"]);
    deepEqual(net.forward(Tensor.zeros([2, 1, 28, 28])).shape, [2, 10]);
    const kinds = [...net].map((m) => m.constructor.name);
    deepEqual(kinds.filter((k) => k === "Dropout").length, 2, "after each hidden linear layer");
    equal(kinds.indexOf("Dropout"), kinds.indexOf("Linear") + 3, "Linear, norm, act, Dropout");
    const plain = [...lenet({ norm: "none", dropout: 0.2 })].map((m) => m.constructor.name);
    equal(plain.filter((k) => k === "Dropout").length, 2);
    equal([...lenet()].some((m) => m.constructor.name === "Dropout"), false, "default: none");
  },
);

gpuTest(
  'lenet({ norm: "group" | "ghost" }) puts GroupNorm or GhostBatchNorm in the BN places (#8.6)',
  () => {
    const kinds = (net: Iterable<unknown>) => [...net].map((m) => (m as object).constructor.name);
    const g = lenet({ norm: "group", groups: 2 });
    equal(kinds(g).filter((k) => k === "GroupNorm").length, 4);
    deepEqual(g.forward(Tensor.zeros([3, 1, 28, 28])).shape, [3, 10]);
    const ghost = lenet({ norm: "ghost", virtualBatchSize: 4 });
    equal(kinds(ghost).filter((k) => k === "GhostBatchNorm").length, 4);
    deepEqual(ghost.forward(Tensor.rand([8, 1, 28, 28], { seed: 1 })).shape, [8, 10]);
    throws(
      () => lenet({ norm: "group", groups: 5 }),
      /groups must divide the channels 6, 16, 120 and 84 \(1, 2\), got 5/,
    );
  },
);
