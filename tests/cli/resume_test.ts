import { deepEqual, equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { parseTrainArgs } from "../../src/cli/train.ts";
import { decodeSafetensors } from "../../src/train/checkpoint.ts";
import { expectUsageErrors, runCli, startCli } from "./run_cli.ts";

// deno-lint-ignore no-explicit-any
type Line = Record<string, any>;
const lines = async (dir: string): Promise<Line[]> =>
  (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));

/** The readings of a run: every update and epoch line, without the timings. */
const readings = (ls: Line[]) =>
  ls.filter((l) => l.type === "update" || l.type === "epoch").map((
    { seconds: _, examplesPerSec: __, ...l },
  ) => l);

/** The checkpoint's tensors, as bytes: equal runs give equal bytes. */
async function tensors(path: string): Promise<Record<string, number[]>> {
  const { tensors } = decodeSafetensors(await Deno.readFile(path));
  const out: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(tensors)) {
    out[k] = [...new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)];
  }
  return out;
}

/** Runs the trainer and sends it Ctrl-C (SIGINT) as soon as it reports its first epoch. */
async function interruptAfterEpoch1(args: string[]): Promise<{ code: number; stderr: string }> {
  const run = startCli(args);
  await run.readUntil("epoch 1:");
  run.child.kill("SIGINT");
  const stdout = await run.readAll();
  const { code } = await run.child.status;
  ok(!stdout.includes("epoch 3:"), `the run ended before Ctrl-C: ${stdout}`);
  return { code, stderr: await run.stderr };
}

Deno.test("parseTrainArgs: --optimizer, --momentum, --weight-decay, --schedule", () => {
  const c = parseTrainArgs(["--optimizer", "adamw", "--schedule", "cosine", "--epochs", "4"]);
  if (c === "help") throw new Error("unexpected help");
  // PyTorch's defaults for AdamW: lr 0.001, weight decay 0.01; cosine over --epochs.
  deepEqual([c.optimizer, c.lr, c.weightDecay, c.momentum, c.schedule], [
    "adamw",
    0.001,
    0.01,
    0,
    "cosine:4",
  ]);
  const d = parseTrainArgs(["--momentum", "0.9", "--weight-decay", "5e-4", "--schedule", "step:3"]);
  if (d === "help") throw new Error("unexpected help");
  deepEqual([d.optimizer, d.lr, d.momentum, d.weightDecay, d.schedule], [
    "sgd",
    1,
    0.9,
    5e-4,
    "step:3:0.1",
  ]);
  const cases: [string[], RegExp][] = [
    [["--optimizer", "rmsprop"], /--optimizer must be one of sgd, adam, adamw, got "rmsprop"/],
    [["--optimizer", "adam", "--momentum", "0.9"], /--momentum applies to --optimizer sgd/],
    [["--momentum", "1"], /--momentum must be from 0 to below 1/],
    [["--momentum=-0.1"], /--momentum must be a number >= 0/],
    [["--weight-decay", "x"], /--weight-decay must be a number >= 0/],
    [["--schedule", "linear"], /--schedule must be none, step:STEP_SIZE\[:GAMMA\] or cosine/],
    [["--schedule", "step:0"], /STEP_SIZE must be a whole number >= 1, got "0"/],
    [["--schedule", "step:2:0"], /GAMMA must be a number > 0/],
    [["--schedule", "cosine:1.5"], /T_MAX must be a whole number >= 1, got "1.5"/],
    [["--resume", ""], /--resume must be a directory path/],
  ];
  expectUsageErrors(cases);
});

Deno.test("deno task train --help documents the new flags", async () => {
  const r = await runCli(["--help"]);
  equal(r.code, 0);
  for (
    const f of [
      "--optimizer sgd|adam|adamw",
      "--momentum",
      "--weight-decay",
      "--schedule",
      "--resume DIR",
    ]
  ) {
    ok(r.stdout.includes(f), f);
  }
});

gpuTest(
  "deno task train --resume: 2 epochs + resumed to 3 equal 3 straight, bit for bit",
  async () => {
    const root = await Deno.makeTempDir();
    const [a, b] = [`${root}/a`, `${root}/b`];
    const flags = [
      "--limit",
      "192",
      "--batch-size",
      "32",
      "--optimizer",
      "adamw",
      "--lr",
      "0.01",
      "--schedule",
      "step:1:0.5",
      "--seed",
      "3",
    ];
    try {
      const straight = await runCli([...flags, "--epochs", "3", "--out", a]);
      equal(straight.code, 0, straight.stderr);
      const first = await runCli([...flags, "--epochs", "2", "--out", b]);
      equal(first.code, 0, first.stderr);
      const config = (await lines(b))[0];
      deepEqual(
        [config.optimizer, config.lr, config.weightDecay, config.schedule],
        ["adamw", 0.01, 0.01, "step:1:0.5"],
        "the optimizer flags are recorded",
      );
      // As if stopped in epoch 3: lines that the saved state does not account for.
      await Deno.writeTextFile(`${b}/metrics.jsonl`, '{"type":"update","epoch":3}\n', {
        append: true,
      });
      const id = config.runId;

      const resumed = await runCli(["--resume", b, "--epochs", "3"]);
      equal(resumed.code, 0, resumed.stderr);
      ok(resumed.stdout.includes(`resuming run ${id} in ${b} after epoch 2, to 3`), resumed.stdout);
      ok(resumed.stdout.includes("note: 1 line of metrics.jsonl after epoch 2"), resumed.stdout);
      const [la, lb] = [await lines(a), await lines(b)];
      deepEqual(readings(lb), readings(la), "every update and epoch line");
      deepEqual(lb.map((l) => l.type).filter((t) => t !== "update"), [
        "config",
        "epoch",
        "epoch",
        "resumed",
        "epoch",
      ]);
      deepEqual(la.filter((l) => l.type === "epoch").map((l) => l.lr), [0.01, 0.005, 0.0025]);
      equal(lb.find((l) => l.type === "resumed")!.runId, id, "the same run id");
      deepEqual(
        await tensors(`${b}/model.safetensors`),
        await tensors(`${a}/model.safetensors`),
        "the weights, bit for bit",
      );
      const lock = JSON.parse(await Deno.readTextFile(`${b}/.lock`));
      equal(lock.runId, id);

      // Ctrl-C in epoch 2 of a run started for 3, then --resume without --epochs: it ends
      // as planned, equal to the run that never stopped.
      const c = `${root}/c`;
      const stopped = await interruptAfterEpoch1([...flags, "--epochs", "3", "--out", c]);
      equal(stopped.code, 130, stopped.stderr);
      ok(stopped.stderr.includes(`continue with: deno task train --resume ${c}`), stopped.stderr);
      const finished = await runCli(["--resume", c]);
      equal(finished.code, 0, finished.stderr);
      deepEqual(readings(await lines(c)), readings(la), "every update and epoch line");
      deepEqual(await tensors(`${c}/model.safetensors`), await tensors(`${a}/model.safetensors`));

      // Refusals, each before any data is loaded.
      const refusals: [string[], RegExp][] = [
        [
          ["--resume", b, "--epochs", "3"],
          /has 3 epochs already, and --epochs 3 asks for 3 in all: pass --epochs 4/,
        ],
        [
          ["--resume", b, "--epochs", "4", "--lr", "0.5"],
          /--lr 0.5 contradicts the run in .*, which was started with --lr 0.01: leave --lr out/,
        ],
        [
          ["--resume", b, "--epochs", "4", "--optimizer", "sgd"],
          /--optimizer sgd contradicts .* started with --optimizer adamw/,
        ],
        [["--resume", b, "--epochs", "4", "--overwrite"], /--overwrite contradicts --resume/],
        [["--resume", root], /is not the folder of a run of deno task train/],
        [["--resume", `${root}/absent`], /is absent/],
      ];
      for (const [args, msg] of refusals) {
        const r = await runCli(args);
        equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        ok(msg.test(r.stderr), `${args.join(" ")}: ${r.stderr}`);
        ok(!r.stdout.includes("adapter:"), "refused before the GPU and the data");
      }
      // A run folder held by a live run.
      using held = await Deno.open(`${b}/.lock`, { read: true, write: true });
      await held.lock(true);
      const busy = await runCli(["--resume", b, "--epochs", "4"]);
      equal(busy.code, 2, busy.stderr);
      ok(/is in use by another run/.test(busy.stderr), busy.stderr);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
