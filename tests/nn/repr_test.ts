// String(module): PyTorch's repr of the same modules (tests/fixtures/module_repr.py), then
// the parameter count.
import { equal } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { lenet } from "../../src/models/lenet.ts";
import {
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  GhostBatchNorm,
  LayerNorm,
  Linear,
  MaxPool2d,
  Module,
  ReLU,
  Sequential,
} from "../../src/nn/mod.ts";
import fx from "../fixtures/module_repr.json" with { type: "json" };

const cases: Record<keyof typeof fx, () => Module> = {
  "lenet()": () => lenet(),
  'lenet({ norm: "none", pool: "avg", activation: "relu", dropout: 0.5 })': () =>
    lenet({ norm: "none", pool: "avg", activation: "relu", dropout: 0.5 }),
  'lenet({ norm: "layer" })': () => lenet({ norm: "layer" }),
  'lenet({ norm: "group", groups: 2 })': () => lenet({ norm: "group", groups: 2 }),
  "layers with other arguments": () =>
    new Sequential(
      new Conv2d(3, 8, [3, 5], { stride: 2, padding: [1, 0], bias: false }),
      new BatchNorm1d(4, { eps: 1e-3, momentum: null, affine: false, trackRunningStats: false }),
      new Sequential(new Linear(3, 2, { bias: false }), new ReLU()),
      new MaxPool2d([2, 3], { stride: 1, padding: 1 }),
      new Flatten(0, 2),
      new Dropout(0.25),
      new LayerNorm(7, { eps: 1e-6, elementwiseAffine: false }),
    ),
  "a leaf": () => new BatchNorm2d(6),
};

for (const [name, want] of Object.entries(fx)) {
  gpuTest(`String(${name}) is PyTorch's repr and the parameter count (fixture)`, () => {
    const m = cases[name as keyof typeof fx]();
    const count = String(want.parameters).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    equal(String(m), `${want.repr}\nParameters: ${count}`);
    m.dispose();
  });
}

gpuTest("a module of one's own prints its extraRepr; GhostBatchNorm adds its batch size", () => {
  class Scale extends Module {
    constructor(readonly factor: number) {
      super();
    }
    override extraRepr(): string {
      return `factor=${this.factor}`;
    }
    forward(x: Parameters<Module["forward"]>[0]) {
      return x.mul(this.factor);
    }
  }
  equal(
    String(new Sequential(new Scale(2), new GhostBatchNorm(3, { virtualBatchSize: 8 }))),
    [
      "Sequential(",
      "  (0): Scale(factor=2)",
      "  (1): GhostBatchNorm(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True, virtual_batch_size=8)",
      ")",
      "Parameters: 6",
    ].join("\n"),
  );
});
