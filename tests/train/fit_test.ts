import { deepEqual, equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { lenet } from "../../src/models/lenet.ts";
import { fit, initXavier } from "../../src/train/fit.ts";
import { evaluateAccuracy, predict } from "../../src/train/evaluate.ts";
import { CrossEntropyLoss } from "../../src/nn/loss.ts";
import { countCorrect } from "../../src/ops/cross_entropy/cross_entropy.ts";
import { loadFashionMnist } from "../../src/data/fashion_mnist.ts";
import { DataLoader } from "../../src/data/loader.ts";
import { memoryStats } from "../../src/gpu/buffer_pool.ts";
import { queueStats } from "../../src/gpu/queue.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/tidy.ts";

const train = await loadFashionMnist({ split: "train", download: false });
const test = await loadFashionMnist({ split: "test", download: false });

/** A fixed batch of real images, [n, 1, 28, 28] in [0, 1], and labels. */
function batch(n: number, from = 0): { x: Tensor; y: Tensor } {
  const x = Float32Array.from(train.images.subarray(from * 784, (from + n) * 784), (v) => v / 255);
  return {
    x: Tensor.from(x, [n, 1, 28, 28]),
    y: Tensor.from(Float32Array.from(train.labels.subarray(from, from + n))),
  };
}

/** Fresh views of a fixed batch: fit disposes the batches a loader hands it. */
const views = (x: Tensor, y: Tensor) => ({ x: x.detach(), y: y.detach() });

gpuTest(
  "fit reports the epoch's mean loss and accuracy of the forward passes it trained on",
  async () => {
    // One step per epoch: the reported loss must be the loss of the network before the step.
    const { x, y } = batch(64);
    const loader = { length: 1, batches: () => [views(x, y)] };
    const ref = lenet();
    initXavier(ref, 3);
    const [loss, correct] = tidy(() =>
      noGrad(() => {
        const logits = ref.forward(x);
        return [new CrossEntropyLoss().forward(logits, y), countCorrect(logits, y)];
      })
    );
    const net = lenet();
    const h = await fit(net, loader, loader, {
      epochs: 1,
      lr: 1,
      init: "xavier",
      seed: 3,
      updatesPerEpoch: 1,
    });
    assertClose([h.epochs[0].loss], [await loss.item()], { atol: 1e-6, rtol: 1e-5 }, "loss");
    equal(h.epochs[0].trainAcc, (await correct.item()) / 64);
    const { loss: l, trainAcc: a } = h.epochs[0];
    deepEqual(h.updates, [{
      epoch: 1,
      fraction: 1,
      step: 1,
      loss: l,
      trainAcc: a,
      windowLoss: l, // one step: the window is the whole epoch
      windowAcc: a,
    }]);
    // Test accuracy is measured after the step, in eval mode.
    equal(h.epochs[0].testAcc, await evaluateAccuracy(net, loader));
    ok(h.epochs[0].seconds > 0 && h.epochs[0].examplesPerSec > 0);
  },
);

gpuTest("fit: the same seed gives the same curve twice; readings at 1/4, 1/2, 3/4, 1", async () => {
  const run = async () => {
    const tr = new DataLoader(train, { batchSize: 32, shuffle: true, seed: 5, limit: 256 });
    const te = new DataLoader(test, { batchSize: 64, limit: 128 });
    const h = await fit(lenet(), tr, te, {
      epochs: 2,
      lr: 1,
      init: "xavier",
      seed: 1,
      updatesPerEpoch: 4,
    });
    return h;
  };
  const a = await run();
  const b = await run();
  deepEqual(a.updates.map((u) => [u.epoch, u.fraction]), [
    [1, 0.25],
    [1, 0.5],
    [1, 0.75],
    [1, 1],
    [2, 0.25],
    [2, 0.5],
    [2, 0.75],
    [2, 1],
  ]);
  deepEqual(a.updates, b.updates);
  deepEqual(
    a.epochs.map((e) => [e.loss, e.trainAcc, e.testAcc]),
    b.epochs.map((e) => [e.loss, e.trainAcc, e.testAcc]),
  );
  ok(a.epochs[1].loss < a.epochs[0].loss, `loss falls: ${a.epochs.map((e) => e.loss)}`);
});

gpuTest(
  "fit: one submission per step, GPU memory flat across epochs, events in order",
  async () => {
    const tr = new DataLoader(train, { batchSize: 64, shuffle: true, seed: 0, limit: 256 });
    const te = new DataLoader(test, { batchSize: 64, limit: 64 });
    const live: number[] = [];
    const events: string[] = [];
    const submits: number[] = [];
    await fit(lenet(), tr, te, {
      epochs: 3,
      lr: 1,
      updatesPerEpoch: 2,
      onUpdate: (u) => events.push(`u${u.epoch}:${u.fraction}`),
      onEpoch: (e) => {
        events.push(`e${e.epoch}`);
        live.push(memoryStats().liveBytes);
        submits.push(queueStats().submits);
      },
    });
    deepEqual(events, ["u1:0.5", "u1:1", "e1", "u2:0.5", "u2:1", "e2", "u3:0.5", "u3:1", "e3"]);
    equal(live[2], live[1], `live bytes after epochs 1..3: ${live}`);
    // No host wait inside a step: per epoch, one submission per step (4), one per readback
    // (2) and one for the test pass.
    deepEqual([submits[1] - submits[0], submits[2] - submits[1]], [4 + 2 + 1, 4 + 2 + 1]);
  },
);

gpuTest("evaluateAccuracy restores the mode and agrees with predict", async () => {
  const net = lenet();
  initXavier(net, 0);
  const { x, y } = batch(50, 100);
  const loader = { length: 2, batches: () => [views(x, y), views(x, y)] };
  net.train();
  const acc = await evaluateAccuracy(net, loader);
  equal(net.training, true);
  const labels = await y.toArray();
  const pred = await predict(net, x);
  equal(net.training, true);
  equal(acc, pred.filter((p, i) => p === labels[i]).length / 50);
  net.eval();
  await evaluateAccuracy(net, loader);
  equal(net.training, false);
});

gpuTest("fit with progress draws a bar per epoch", async () => {
  const lines: string[] = [];
  const writer = {
    writeSync: (p: Uint8Array) => (lines.push(new TextDecoder().decode(p)), p.length),
  };
  const { x, y } = batch(16);
  const loader = { length: 2, n: 32, batches: () => [views(x, y), views(x, y)] };
  await fit(lenet(), loader, loader, { epochs: 2, lr: 0.1, progress: { writer, tty: false } });
  const done = lines.filter((l) => l.includes("32/32 ex"));
  deepEqual(done.map((l) => l.split(" ")[1]), ["1/2", "2/2"]);
  ok(done.every((l) => /loss \d\.\d{3}/.test(l)), lines.join(""));
});
