// fit with an AbortSignal (issue 25, point 4): it returns at the next step boundary, the
// history says where it stopped, and the model is usable (it holds the weights of the last
// finished step: the same as a run of that many steps).
import { deepEqual, equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { lenet } from "../../src/models/lenet.ts";
import { fit } from "../../src/train/fit.ts";
import { DataLoader } from "../../src/data/loader.ts";
import { data, weights } from "./tiny_data.ts";

gpuTest("fit stops at the step boundary after its signal is aborted", async () => {
  using tr = new DataLoader(data(64), { batchSize: 8, seed: 0 });
  const ac = new AbortController();
  const net = lenet({ norm: "batch" });
  let steps = 0;
  const h = await fit(net, tr, tr, {
    epochs: 3,
    lr: 0.1,
    init: "xavier",
    signal: ac.signal,
    onStep: ({ epoch, step }) => {
      steps++;
      if (epoch === 2 && step === 3) ac.abort(); // inside step 3 of epoch 2
    },
  });
  deepEqual(h.stopped, { reason: "aborted", epoch: 2, step: 3 });
  equal(steps, 8 + 3, "no step after the one that aborted");
  equal(h.epochs.length, 1, "the stopped epoch has no end-of-epoch reading");
  const lastUpdate = h.updates.at(-1)!;
  deepEqual([lastUpdate.epoch, lastUpdate.step], [2, 3], "a last reading of the stopped epoch");
  ok(Number.isFinite(lastUpdate.loss));

  // The same run for exactly 8 + 3 steps, without a signal: the same weights.
  const ref = lenet({ norm: "batch" });
  let n = 0;
  const stop = new AbortController();
  await fit(ref, tr, tr, {
    epochs: 2,
    lr: 0.1,
    init: "xavier",
    signal: stop.signal,
    onStep: () => void (++n === 11 && stop.abort()),
  });
  assertClose(await weights(net), await weights(ref), { atol: 0, rtol: 0 }, "weights");

  // The model is usable, and fit continues the stopped history (from the next epoch).
  const h2 = await fit(net, tr, tr, { epochs: 1, lr: 0.1, history: h });
  equal(h2.stopped, undefined, "a finished fit clears stopped");
  deepEqual(h2.epochs.map((e) => e.epoch), [1, 2]);

  // Aborted before it starts: no step at all.
  const before = await weights(net);
  const h3 = await fit(net, tr, tr, { epochs: 1, lr: 0.1, signal: AbortSignal.abort() });
  deepEqual(h3.stopped, { reason: "aborted", epoch: 1, step: 0 });
  assertClose(await weights(net), before, { atol: 0, rtol: 0 }, "untouched");
});
