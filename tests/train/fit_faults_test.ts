// fit under faults: a diverging run stops with a catchable error, callbacks are awaited,
// an empty loader or a lone last batch is refused before any work; and the hooks and
// continuation the experiments need.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { lenet } from "../../src/models/lenet.ts";
import { DivergenceError, fit, type StepEvent } from "../../src/train/fit.ts";
import { evaluateAccuracy } from "../../src/train/evaluate.ts";
import { DataLoader } from "../../src/data/loader.ts";
import { data, weights } from "./tiny_data.ts";
import { SGD } from "../../src/optim/sgd.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { keep } from "../../src/tensor/tidy.ts";
import { queueStats } from "../../src/gpu/queue.ts";

gpuTest(
  "a diverging run stops with a DivergenceError naming the epoch and step (#6.3)",
  async () => {
    using tr = new DataLoader(data(64), { batchSize: 8, seed: 0 });
    const net = lenet(); // (plain LeNet saturates its sigmoids: its loss stays finite, if huge)
    const err = await fit(net, tr, tr, { epochs: 3, lr: 1e30, updatesPerEpoch: 4, init: "xavier" })
      .catch((e) => e);
    ok(err instanceof DivergenceError, `got ${JSON.stringify(err).slice(0, 300)}`);
    equal(err.epoch, 1);
    ok(err.step >= 1 && err.step <= 8, `step ${err.step}`);
    ok(!Number.isFinite(err.loss));
    ok(
      /training diverged: the training loss is (NaN|Infinity) at epoch 1, step \d/.test(
        err.message,
      ),
      err.message,
    );
    ok(err.message.includes("lower the learning rate"));
  },
);

gpuTest("fit awaits its callbacks: a failing onEpoch rejects fit, catchably (#6.9)", async () => {
  using tr = new DataLoader(data(16), { batchSize: 8 });
  let after = 0;
  await rejects(
    () =>
      fit(lenet(), tr, tr, {
        epochs: 3,
        lr: 0.1,
        onEpoch: async () => {
          await new Promise((r) => setTimeout(r, 5));
          throw new Error("disk full");
        },
        onUpdate: () => void after++,
      }),
    /disk full/,
  );
  equal(after, 2, "training stopped at the failing callback (the 2 readings of epoch 1)");
});

gpuTest(
  "fit refuses an empty loader and a lone last batch before any work (#6.3, #6.7)",
  async () => {
    const empty = { length: 0, batches: () => [] };
    await rejects(
      () => fit(lenet(), empty, empty, { epochs: 1, lr: 1 }),
      /the training loader has no batches/,
    );
    const never = { length: 2, batches: () => [] };
    await rejects(
      () => fit(lenet(), never, never, { epochs: 1, lr: 1 }),
      /yielded no batches in epoch 1/,
    );
    using lone = new DataLoader(data(17), { batchSize: 8 });
    const submits = queueStats().submits;
    await rejects(
      () => fit(lenet(), lone, lone, { epochs: 1, lr: 1 }),
      /last batch holds 1 example \(17 examples, batch size 8\).*dropLast: true/,
    );
    equal(queueStats().submits, submits, "refused before training");
    using dropped = new DataLoader(data(17), { batchSize: 8, dropLast: true });
    const h = await fit(lenet(), dropped, lone, { epochs: 1, lr: 1 });
    equal(h.epochs.length, 1);
    // Without batch norm a batch of one trains fine.
    await fit(lenet({ norm: "none" }), lone, lone, { epochs: 1, lr: 0.5 });
  },
);

gpuTest(
  "fit goes on across calls: two calls of one epoch equal one call of two (#8.1)",
  async () => {
    using tr = new DataLoader(data(48), { batchSize: 16, seed: 3 });
    const run = async (split: boolean) => {
      const net = lenet();
      const opt = new SGD(net.parameters(), { lr: 0.5, momentum: 0.9 });
      const opts = { lr: 0.5, optimizer: opt, updatesPerEpoch: 3 };
      let h = await fit(net, tr, tr, { ...opts, epochs: split ? 1 : 2, init: "xavier", seed: 1 });
      if (split) h = await fit(net, tr, tr, { ...opts, epochs: 1, history: h });
      opt.dispose();
      return { h, w: await weights(net) };
    };
    const one = await run(false), two = await run(true);
    deepEqual(two.h.epochs.map((e) => e.epoch), [1, 2]);
    deepEqual(two.h.updates, one.h.updates, "the same readings, epoch numbers and shuffles");
    deepEqual(two.w, one.w, "the same weights, bit for bit");
  },
);

gpuTest(
  "onStep runs after every optimizer step with no readback; windows read the last steps (#8.1)",
  async () => {
    using tr = new DataLoader(data(48), { batchSize: 16, seed: 1 });
    const losses: Tensor[] = [];
    const steps: string[] = [];
    const before = queueStats().submits;
    const h = await fit(lenet(), tr, tr, {
      epochs: 1,
      lr: 0.5,
      updatesPerEpoch: 3,
      onStep: (e: StepEvent) => {
        steps.push(`${e.epoch}.${e.step}/${e.globalStep}`);
        equal(e.x.shape[0], 16);
        losses.push(keep(e.loss.clone()));
      },
    });
    deepEqual(steps, ["1.1/1", "1.2/2", "1.3/3"]);
    // 3 steps + 3 readings + the test pass: the hook added no submission.
    equal(queueStats().submits - before, 3 + 3 + 1);
    // Each reading's window is that one step's loss.
    const perStep = await Promise.all(losses.map((l) => l.item()));
    assertClose(h.updates.map((u) => u.windowLoss), perStep, { atol: 1e-6, rtol: 1e-5 }, "windows");
    const mean = perStep.reduce((a, b) => a + b) / 3;
    assertClose([h.epochs[0].loss], [mean], { atol: 1e-6, rtol: 1e-5 }, "epoch mean");
    losses.forEach((l) => l.dispose());
  },
);

gpuTest("training-mode evaluation leaves every buffer bit-identical (#8.3)", async () => {
  using tr = new DataLoader(data(40), { batchSize: 20, seed: 2 });
  const net = lenet();
  await fit(net, tr, tr, { epochs: 1, lr: 0.5, init: "xavier" });
  const before = await weights(net);
  const acc = await evaluateAccuracy(net, tr, { mode: "train" });
  ok(acc >= 0 && acc <= 1);
  deepEqual(await weights(net), before, "running statistics and counters untouched");
  equal(net.training, true, "mode restored");
  await rejects(
    () => evaluateAccuracy(net, tr, { mode: "test" as "eval" }),
    /mode must be "eval" or "train", got "test"/,
  );
});
