import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { lenet, type LeNetOptions } from "../../src/models/lenet.ts";
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
    const params = net.parameters().reduce((a, p) => a + p.size, 0);
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

Deno.test("lenet rejects unknown options, naming the value", () => {
  throws(
    () => lenet({ norm: "group" as "batch" }),
    /norm must be "batch", "layer" or "none", got "group"/,
  );
  throws(() => lenet({ pool: "min" as "max" }), /pool must be "max" or "avg"/);
  throws(() => lenet({ activation: "tanh" as "relu" }), /activation must be "sigmoid" or "relu"/);
});
