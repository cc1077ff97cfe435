import { deepEqual, equal, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { lenet } from "../../src/models/lenet.ts";
import { type EpochEvent, fit, type History } from "../../src/train/fit.ts";
import { loadFashionMnist } from "../../src/data/fashion_mnist.ts";
import { DataLoader } from "../../src/data/loader.ts";
import { stateDictEntries } from "../../src/train/checkpoint.ts";
import { loadTrainingState, saveTrainingState } from "../../src/train/training_state.ts";
import { Adam, AdamW } from "../../src/optim/adam.ts";
import { SGD } from "../../src/optim/sgd.ts";
import type { Optimizer } from "../../src/optim/optimizer.ts";
import { CosineAnnealingLR, type LRScheduler, StepLR } from "../../src/optim/schedulers.ts";
import type { Module } from "../../src/nn/module.ts";
import type { LeNetOptions } from "../../src/models/lenet.ts";
import { manualSeed } from "../../src/tensor/random.ts";

const data = await loadFashionMnist({ split: "test", download: false });

/** Everything but the timings, which differ between any two runs. */
const readings = (h: History) => ({
  updates: h.updates,
  epochs: h.epochs.map(({ seconds: _, examplesPerSec: __, ...e }: EpochEvent) => e),
});

async function weights(net: Module): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, e] of Object.entries(await stateDictEntries(net))) {
    out[k] = Array.from(e.data, Number);
  }
  return out;
}

type Setup = (net: Module) => { optimizer: Optimizer; scheduler?: LRScheduler };

/** Trains `epochs` epochs straight, and `split` + the rest through a saved training state. */
async function straightAndResumed(
  setup: Setup,
  split: number,
  epochs: number,
  model: LeNetOptions = { norm: "batch" },
) {
  using train = new DataLoader(data, { batchSize: 32, shuffle: true, seed: 5, limit: 160 });
  using test = new DataLoader(data, { batchSize: 64, limit: 64 });
  const opts = { updatesPerEpoch: 2, init: "xavier" as const, seed: 2 };

  manualSeed(7); // the seed of Dropout layers, when there are some
  const a = lenet(model);
  const sa = setup(a);
  const straight = await fit(a, train, test, { ...opts, epochs, ...sa });

  manualSeed(7);
  const b = lenet(model);
  const sb = setup(b);
  const first = await fit(b, train, test, { ...opts, epochs: split, ...sb });
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await saveTrainingState(path, { net: b, ...sb }, first);
    // A fresh process would build everything anew: a new model, optimizer and scheduler.
    const c = lenet(model); // its Dropout layers draw other seeds: the state restores them
    const sc = setup(c);
    const { history } = await loadTrainingState(path, { net: c, ...sc });
    deepEqual(readings(history), readings(first));
    const resumed = await fit(c, train, test, {
      epochs: epochs - split,
      updatesPerEpoch: opts.updatesPerEpoch,
      history,
      ...sc,
    });
    return { straight, resumed, a, c, path };
  } catch (e) {
    await Deno.remove(path);
    throw e;
  }
}

const setups: [string, Setup][] = [
  ["SGD with momentum, Nesterov, weight decay and StepLR", (net) => {
    const optimizer = new SGD(net.parameters(), {
      lr: 0.5,
      momentum: 0.9,
      nesterov: true,
      weightDecay: 1e-3,
    });
    return { optimizer, scheduler: new StepLR(optimizer, 1, { gamma: 0.5 }) };
  }],
  ["Adam with CosineAnnealingLR", (net) => {
    const optimizer = new Adam(net.parameters(), { lr: 0.01 });
    return { optimizer, scheduler: new CosineAnnealingLR(optimizer, 3) };
  }],
];

for (const [name, setup] of setups) {
  gpuTest(
    `fit resumed from saveTrainingState equals the run that never stopped: ${name}`,
    async () => {
      const { straight, resumed, a, c, path } = await straightAndResumed(setup, 2, 3);
      await Deno.remove(path);
      deepEqual(readings(resumed), readings(straight));
      deepEqual(await weights(c), await weights(a), "weights and BN statistics bit for bit");
      // The schedule moved the rate each epoch, and the resumed run carried it on.
      equal(new Set(straight.epochs.map((e) => e.lr)).size, 3);
    },
  );
}

gpuTest("a resumed run with Dropout draws the masks the run that never stopped drew", async () => {
  const setup: Setup = (net) => ({ optimizer: new SGD(net.parameters(), { lr: 0.5 }) });
  const { straight, resumed, a, c, path } = await straightAndResumed(setup, 1, 2, {
    norm: "none",
    dropout: 0.5,
  });
  await Deno.remove(path);
  deepEqual(readings(resumed), readings(straight));
  deepEqual(await weights(c), await weights(a));
});

gpuTest("fit steps a scheduler once per epoch and records each epoch's rate", async () => {
  using train = new DataLoader(data, { batchSize: 32, limit: 64 });
  const net = lenet({ norm: "none" });
  const optimizer = new AdamW(net.parameters(), { lr: 0.004 });
  const scheduler = new StepLR(optimizer, 2, { gamma: 0.25 });
  const h = await fit(net, train, train, { epochs: 5, optimizer, scheduler, updatesPerEpoch: 1 });
  deepEqual(h.epochs.map((e) => e.lr), [0.004, 0.004, 0.001, 0.001, 0.00025]);
  equal(optimizer.lr, 0.00025); // epoch 6 would train at lr(5) = 0.004 * 0.25^2
  await rejects(
    () => fit(net, train, train, { epochs: 1, scheduler, optimizer: new AdamW(net.parameters()) }),
    /the scheduler drives another optimizer/,
  );
});

gpuTest("loadTrainingState refuses another optimizer or scheduler, naming both", async () => {
  const net = lenet({ norm: "none" });
  const optimizer = new Adam(net.parameters(), { lr: 0.01 });
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await saveTrainingState(path, { net, optimizer }, { updates: [], epochs: [] });
    await rejects(
      () => loadTrainingState(path, { net, optimizer: new SGD(net.parameters(), { lr: 1 }) }),
      /saved with the optimizer Adam, this one is SGD/,
    );
    const other = new Adam(net.parameters(), { lr: 0.01 });
    await rejects(
      () => loadTrainingState(path, { net, optimizer: other, scheduler: new StepLR(other, 1) }),
      /saved with no scheduler, this run has the scheduler StepLR/,
    );
    await rejects(
      () => loadTrainingState(path, { net, optimizer: new Adam(net.parameters(), { eps: 1e-6 }) }),
      /eps was 1e-8 when saved/,
    );
  } finally {
    await Deno.remove(path);
  }
});
