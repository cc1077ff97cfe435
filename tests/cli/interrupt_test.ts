// Ctrl-C in `deno task train` (issue 25, point 4): the run stops at the next step boundary,
// says which checkpoint holds the last finished epoch, logs where it stopped, exits 130.
import { equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { lenet } from "../../src/models/lenet.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";

import { startCli } from "./run_cli.ts";

gpuTest(
  "Ctrl-C stops the trainer after a step, keeps the last epoch's checkpoint, exits 130",
  async () => {
    const out = await Deno.makeTempDir();
    try {
      const run = startCli([
        "--limit",
        "1024",
        "--batch-size",
        "64",
        "--epochs",
        "100",
        "--out",
        out,
        "--overwrite",
      ]);
      // Wait for the first epoch's line, then interrupt during the second epoch.
      const first = await run.readUntil("epoch 1:");
      ok(first.includes("epoch 1:"), `the trainer ended before its first epoch: ${first}`);
      await new Promise((r) => setTimeout(r, 500));
      const t0 = performance.now();
      run.child.kill("SIGINT");
      const [stdout, status] = await Promise.all([run.readAll(), run.child.status]);
      const seconds = (performance.now() - t0) / 1000;
      const err = await run.stderr;
      equal(status.code, 130, `exit status; stderr: ${err}`);
      ok(seconds < 20, `it took ${seconds.toFixed(1)} s to stop`);
      const epochs = [...stdout.matchAll(/^epoch (\d+):/gm)].map((m) => +m[1]);
      const lastEpoch = epochs.at(-1)!;
      ok(err.includes("interrupted: stopping after the current step"), err);
      ok(
        err.includes(`${out}/model.safetensors holds the model after epoch ${lastEpoch}`),
        `stderr should name the checkpoint of epoch ${lastEpoch}: ${err}`,
      );
      const meta = await loadCheckpoint(lenet(), `${out}/model.safetensors`);
      equal(meta.epochs, String(lastEpoch));
      const lines = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l));
      const stop = lines.at(-1);
      equal(stop.type, "interrupted");
      equal(stop.reason, "aborted");
      equal(stop.epoch, lastEpoch + 1, "stopped in the epoch after the last finished one");
      ok(!stdout.includes("wrote "), "no charts or 'wrote' line for a stopped run");
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
);
