import { ok, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { queueStats, sync } from "../../src/gpu/queue.ts";
import { countCorrect, crossEntropy } from "../../src/ops/cross_entropy/cross_entropy.ts";
import * as ref from "../../src/ops/cross_entropy/reference.ts";
import { Rng } from "../../src/tensor/random.ts";
import { centralDiff } from "../central_diff.ts";

function data(N: number, C: number, seed: number, scale = 3) {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: N * C }, () => scale * rng.normal());
  const t = Float32Array.from({ length: N }, () => Math.floor(rng.uniform() * C));
  return { x, t };
}

Deno.test("cross-entropy reference backward matches central differences", () => {
  const [N, C] = [3, 5];
  const { x: x32, t } = data(N, C, 7);
  const x = Float64Array.from(x32);
  const g = ref.refCrossEntropyBackward(x, t, N, C, 1.5);
  const h = 1e-6;
  const num = centralDiff(x, () => 1.5 * ref.refCrossEntropyForward(x, t, N, C), h);
  assertClose(g, num, { atol: 1e-8, rtol: 1e-6 }, "dinp");
});

for (const [N, C] of [[1, 1], [1, 10], [3, 10], [7, 7], [256, 10], [513, 3], [1000, 10]]) {
  gpuTest(`crossEntropy and countCorrect vs float64 reference [${N}, ${C}]`, async () => {
    const { x, t } = data(N, C, N * 31 + C);
    const logits = Tensor.from(x, { shape: [N, C], requiresGrad: true });
    const target = Tensor.from(t);
    // loss.backward(): the forward's own gradient for 1, copied with no launch; then an
    // explicit gradient of 2, through the backward kernel (summed into .grad: 1 + 2)
    const loss = crossEntropy(logits, target);
    ok(loss.shape.length === 0, `loss is 0-d, got [${loss.shape}]`);
    await sync();
    loss.backward();
    ok(queueStats().pendingLaunches === 0, "loss.backward() launched a kernel");
    const again = crossEntropy(logits, target);
    again.backward(Tensor.from([2], []));
    assertClose([await loss.item()], [ref.refCrossEntropyForward(x, t, N, C)], {
      atol: 1e-6,
      rtol: 1e-5,
    }, "loss");
    assertClose(await logits.grad!.toArray(), ref.refCrossEntropyBackward(x, t, N, C, 3), {
      atol: 1e-7,
      rtol: 1e-5,
    }, "dlogits");
    const correct = await countCorrect(logits, target).item();
    ok(correct === ref.refCountCorrect(x, t, N, C), `correct ${correct}`);
  });
}

gpuTest("crossEntropy is stable for huge logits", async () => {
  const x = Float32Array.of(1000, -1000, 0, 88, 89, 90);
  const t = Float32Array.of(1, 2);
  const loss = await crossEntropy(Tensor.from(x, [2, 3]), Tensor.from(t)).item();
  assertClose([loss], [ref.refCrossEntropyForward(x, t, 2, 3)], { atol: 1e-3, rtol: 1e-6 }, "loss");
});

gpuTest("countCorrect takes the first maximum on ties, as torch.argmax", async () => {
  const x = Tensor.from([[1, 1, 0], [0, 2, 2], [3, 3, 3]]);
  ok((await countCorrect(x, Tensor.from([0, 1, 0])).item()) === 3, "ties go to the first");
  ok((await countCorrect(x, Tensor.from([1, 2, 2])).item()) === 0, "not to later ones");
});

gpuTest(
  "crossEntropy's loss is NaN for a target outside [0, C) (and reading it throws)",
  async () => {
    const x = Tensor.from([[1, 2], [3, 4]]);
    for (
      const [t, what] of [[[0, 2], "target 2 of 2"], [[-1, 0], "target -1"], [[0.5, 0], "0.5"]]
    ) {
      const loss = crossEntropy(x, Tensor.from(t as number[]));
      ok(Number.isNaN(await loss.detach().item()), what as string); // the data, without the check
      await rejects(loss.item(), /is not a class index/, what as string);
    }
  },
);

gpuTest("crossEntropy rejects mismatched shapes with a clear error", () => {
  let msg = "";
  try {
    crossEntropy(Tensor.zeros([4, 10]), Tensor.zeros([3]));
  } catch (e) {
    msg = (e as Error).message;
  }
  ok(msg.includes("target [4]") && msg.includes("got [3]"), msg);
});
