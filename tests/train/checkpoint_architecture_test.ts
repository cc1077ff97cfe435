// Checkpoints rebuild their model and refuse another (issue 24, point 6): the architecture
// that lenet() records is saved with the weights; a model of another architecture is refused
// with both in the message (the same names and shapes do not make the same function); key
// and shape mismatches are reported before types; loadLeNetCheckpoint builds the model.
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { architectureOf, lenet, type LeNetOptions, nn, Tensor, tidy } from "../../mod.ts";
import {
  encodeSafetensors,
  loadCheckpoint,
  loadLeNetCheckpoint,
  saveCheckpoint,
} from "../../train.ts";
import { stateDictEntries } from "../../src/train/checkpoint.ts";

async function withFile(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(`${dir}/model.safetensors`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const x = () => Tensor.rand([2, 1, 28, 28], { seed: 3 });

gpuTest(
  "a LeNet checkpoint refuses a LeNet of other options, naming both",
  () =>
    withFile(async (path) => {
      using saved = lenet();
      await saveCheckpoint(saved, path);
      for (const opts of [{ pool: "avg" }, { activation: "relu" }] as LeNetOptions[]) {
        using other = lenet(opts);
        await rejects(
          loadCheckpoint(other, path),
          new RegExp(
            `is of another model: it was saved from .*"pool":"max".*"activation":"sigmoid".*` +
              `this model is .*${Object.values(opts)[0]}.*\\(${Object.keys(opts)[0]}: `,
          ),
        );
      }
      using same = lenet();
      await loadCheckpoint(same, path);
      using a = tidy(() => saved.eval().forward(x())), b = tidy(() => same.eval().forward(x()));
      deepEqual(await b.toArray(), await a.toArray());
    }),
);

gpuTest(
  "a run of deno task train saved before the architecture key: read from its config",
  () =>
    withFile(async (path) => {
      using net = lenet();
      const config = { norm: "batch", pool: "max", activation: "sigmoid", lr: 1, epochs: 10 };
      const bytes = encodeSafetensors(await stateDictEntries(net), {
        format: "pt",
        config: JSON.stringify(config),
      });
      await Deno.writeFile(path, bytes);
      using avg = lenet({ pool: "avg" });
      await rejects(loadCheckpoint(avg, path), /pool: "max" vs "avg"/);
      const { net: rebuilt } = await loadLeNetCheckpoint(path);
      using _ = rebuilt;
      deepEqual(architectureOf(rebuilt), architectureOf(net));
    }),
);

gpuTest(
  "names and shapes are checked before types (an I64 counter where the model has none)",
  () =>
    withFile(async (path) => {
      // No architecture recorded on either side: built by hand.
      using bn = new nn.Sequential(new nn.Linear(3, 2), new nn.BatchNorm1d(2));
      await saveCheckpoint(bn, path);
      using ln = new nn.Sequential(new nn.Linear(3, 2), new nn.LayerNorm(2));
      const err = await loadCheckpoint(ln, path).then(() => null, (e: Error) => e);
      ok(err, "refused");
      match(err.message, /does not fit this model: unexpected keys: 1\.running_mean/);
      ok(!/I64|dtype/.test(err.message), err.message);
      using wide = new nn.Sequential(new nn.Linear(3, 4), new nn.BatchNorm1d(4));
      await rejects(
        loadCheckpoint(wide, path),
        /shapes differ \(the model's, the file's\): 0\.weight: expected \[4, 3\], got \[2, 3\]/,
      );
    }),
);

gpuTest(
  "loadLeNetCheckpoint builds the model a checkpoint describes and loads it",
  () =>
    withFile(async (path) => {
      const opts: LeNetOptions = { norm: "group", groups: 1, pool: "avg", activation: "relu" };
      using saved = lenet(opts);
      await saveCheckpoint(saved, path, { metadata: { epochs: "3" } });
      const { net, metadata } = await loadLeNetCheckpoint(path);
      using _ = net;
      deepEqual(architectureOf(net), architectureOf(saved));
      equal(metadata.epochs, "3");
      using a = tidy(() => saved.eval().forward(x())), b = tidy(() => net.eval().forward(x()));
      deepEqual(await b.toArray(), await a.toArray());
    }),
);

gpuTest("loadLeNetCheckpoint refuses a file that records no LeNet", () =>
  withFile(async (path) => {
    using linear = new nn.Linear(3, 2);
    await saveCheckpoint(linear, path);
    await rejects(loadLeNetCheckpoint(path), /records no LeNet architecture .*loadCheckpoint/);
  }));
