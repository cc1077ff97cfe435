/**
 * Misuse of the public ops gives an error that names the op and the argument (issue 25,
 * point 7): a non-tensor where a tensor goes (a number, undefined, a plain array), and
 * `backward`'s options passed alone, as PyTorch's `retain_graph=True` suggests.
 */
import { equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { F, nn, optim, Tensor } from "../../mod.ts";
import { assertClose } from "../assert_close.ts";

gpuTest("backward takes its options as its only argument", async () => {
  const x = Tensor.from([1, -2, 3], { requiresGrad: true });
  const y = x.square().sum();
  y.backward({ retainGraph: true }); // dy/dx = 2x, graph kept
  y.backward(); // a second pass through the kept graph: 4x
  assertClose(await x.grad!.toArray(), [4, -8, 12], { atol: 0, rtol: 0 });
  // Without retainGraph the graph is gone after the first pass, as before.
  const z = x.mul(2).sum();
  z.backward({});
  throws(() => z.backward(), /second time/);
  throws(() => y.backward(3 as never), /backward: argument "grad" must be a Tensor, got number 3/);
});

const x4 = () => Tensor.randn([2, 3, 4, 4], { seed: 1 });
const cases: [string, () => unknown, RegExp][] = [
  ["add", () => x4().add("1" as never), /add: argument "other" must be a Tensor, got string 1/],
  [
    "mul",
    () => x4().mul(undefined as never),
    /mul: argument "other" must be a Tensor, got undefined/,
  ],
  ["eq", () => x4().eq([1, 2] as never), /eq: argument "other" must be a Tensor, got an Array/],
  ["relu", () => F.relu(3 as never), /relu: argument "input" must be a Tensor, got number 3/],
  [
    "conv2d input",
    () => F.conv2d(7 as never, Tensor.zeros([1, 3, 3, 3])),
    /conv2d: argument "input"/,
  ],
  [
    "conv2d weight",
    () => F.conv2d(x4(), undefined as never),
    /conv2d: argument "weight" must be a Tensor, got undefined/,
  ],
  [
    "conv2d bias",
    () => F.conv2d(x4(), Tensor.zeros([1, 3, 3, 3]), 0 as never),
    /conv2d: argument "bias" must be a Tensor or null, got number 0/,
  ],
  [
    "linear",
    () => F.linear(Tensor.zeros([2, 3]), [[1, 2, 3]] as never),
    /linear: argument "weight"/,
  ],
  [
    "batchNorm",
    () => F.batchNorm(x4(), null, null, {} as never),
    /batchNorm: argument "weight" must be a Tensor or null, got an Object/,
  ],
  [
    "layerNorm",
    () => F.layerNorm(null as never, 4),
    /layerNorm: argument "input" must be a Tensor, got null/,
  ],
  ["groupNorm", () => F.groupNorm(1 as never, 1), /groupNorm: argument "input"/],
  [
    "ghostBatchNorm",
    () => F.ghostBatchNorm(x4(), 1 as never, null),
    /ghostBatchNorm: argument "runningMean"/,
  ],
  ["maxPool2d", () => F.maxPool2d(1 as never, 2), /maxPool2d: argument "input"/],
  ["avgPool2d", () => F.avgPool2d(1 as never, 2), /avgPool2d: argument "input"/],
  ["dropout", () => F.dropout(1 as never, 0.5), /dropout: argument "input"/],
  [
    "crossEntropy",
    () => F.crossEntropy(Tensor.zeros([2, 3]), [0, 1] as never),
    /crossEntropy: argument "target" must be a Tensor, got an Array/,
  ],
  [
    "countCorrect",
    () => F.countCorrect(1 as never, Tensor.zeros([2])),
    /countCorrect: argument "input"/,
  ],
  [
    "BatchNorm2d",
    () => new nn.BatchNorm2d(3).forward(5 as never),
    /BatchNorm2d\.forward: argument "input" must be a Tensor, got number 5/,
  ],
  [
    "LayerNorm",
    () => new nn.LayerNorm(4).forward(5 as never),
    /LayerNorm\.forward: argument "input"/,
  ],
  [
    "GroupNorm",
    () => new nn.GroupNorm(1, 3).forward(5 as never),
    /GroupNorm\.forward: argument "input"/,
  ],
  ["Conv2d", () => new nn.Conv2d(3, 1, 3).forward(5 as never), /Conv2d\.forward: argument "input"/],
  ["Flatten", () => new nn.Flatten().forward(5 as never), /Flatten\.forward: argument "input"/],
  ["Sigmoid", () => new nn.Sigmoid().forward(5 as never), /Sigmoid\.forward: argument "input"/],
  [
    "Sequential",
    () => new nn.Sequential(new nn.ReLU()).forward(5 as never),
    /ReLU\.forward: argument "input"/,
  ],
  [
    "init.zeros",
    () => nn.init.zeros(3 as never),
    /init\.zeros: argument "tensor" must be a Tensor, got number 3/,
  ],
  [
    "init.xavierUniform",
    () => nn.init.xavierUniform(undefined as never),
    /init\.xavierUniform: argument "tensor"/,
  ],
  [
    "init.pytorchDefault",
    () => nn.init.pytorchDefault(Tensor.zeros([2, 2]), 1 as never),
    /init\.pytorchDefault: argument "bias" must be a Tensor or null/,
  ],
  [
    "SGD",
    () => new optim.SGD([Tensor.zeros([2]), 7 as never], { lr: 0.1 }),
    /SGD: argument "params\[1\]" must be a Tensor, got number 7/,
  ],
];

gpuTest("every public op names itself and the argument that is not a tensor", () => {
  let n = 0;
  for (const [name, fn, want] of cases) {
    throws(fn, (e: Error) => {
      if (!(e instanceof TypeError) || !want.test(e.message)) {
        throw new Error(`${name}: expected a TypeError matching ${want}, got ${e}`);
      }
      return true;
    });
    n++;
  }
  equal(n, cases.length);
});
