import { deepEqual, equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { parseTrainArgs, UsageError } from "../../src/cli/train.ts";
import { lenet } from "../../src/models/lenet.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { expectUsageErrors, runCli } from "./run_cli.ts";

Deno.test("parseTrainArgs: defaults reproduce the lecture", () => {
  const c = parseTrainArgs([]);
  if (c === "help") throw new Error("unexpected help");
  const { out, ...rest } = c;
  deepEqual(rest, {
    norm: "batch",
    pool: "max",
    activation: "sigmoid",
    optimizer: "sgd",
    lr: 1,
    momentum: 0,
    weightDecay: 0,
    schedule: "none",
    epochs: 10,
    batchSize: 256,
    seed: 0,
    data: undefined,
    overwrite: false,
    limit: undefined,
    resume: undefined,
  });
  ok(/^runs\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d$/.test(out), out);
  equal(parseTrainArgs(["--help"]), "help");
});

Deno.test("parseTrainArgs names the bad flag", () => {
  const cases: [string[], RegExp][] = [
    [
      ["--norm", "instance"],
      /--norm must be one of batch, layer, group, ghost, none, got "instance"/,
    ],
    [["--lr", "0"], /--lr must be a number > 0, got "0"/],
    [["--lr", "fast"], /--lr must be a number > 0/],
    [["--epochs", "1.5"], /--epochs must be a whole number >= 1 in decimal notation, got "1.5"/],
    [["--batch-size", "0"], /--batch-size must be a whole number >= 1/],
    [["--limit=-3"], /--limit must be a whole number >= 1 in decimal notation, got "-3"/],
    [["--limit", "-3"], /'--limit' argument is ambiguous/],
    [["--bogus"], /bogus/],
    [["--epochs"], /epochs/],
    [["stray"], /stray/],
  ];
  expectUsageErrors(cases);
});

Deno.test("deno task train: usage errors exit with code 2, --help with 0", async () => {
  for (const args of [["--norm", "instance"], ["--bogus"], ["--lr", "-1"]]) {
    const r = await runCli(args);
    equal(r.code, 2, `${args}: ${r.stderr}`);
    ok(r.stderr.includes(args[0]) && r.stderr.includes("Usage:"), r.stderr);
  }
  const help = await runCli(["--help"]);
  equal(help.code, 0);
  ok(help.stdout.includes("--batch-size"));
});

gpuTest(
  "deno task train --limit 512 --epochs 1 writes metrics, curves and a checkpoint",
  async () => {
    const out = await Deno.makeTempDir();
    try {
      const r = await runCli(["--limit", "512", "--epochs", "1", "--out", out]);
      equal(r.code, 0, r.stderr);
      ok(r.stdout.startsWith("adapter: "), r.stdout);
      ok(
        /epoch 1: loss \d\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}/.test(r.stdout),
        r.stdout,
      );
      ok(r.stderr.includes("512/512 ex"), `progress bar: ${r.stderr}`);
      const lines = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      equal(lines[0].type, "config");
      const epochs = lines.filter((l) => l.type === "epoch");
      equal(epochs.length, 1);
      deepEqual(
        Object.keys(epochs[0]).sort(),
        ["type", "epoch", "loss", "trainAcc", "testAcc", "seconds", "examplesPerSec", "lr"].sort(),
      );
      ok(lines.filter((l) => l.type === "update").length >= 2);
      ok((await Deno.readTextFile(`${out}/curves.svg`)).startsWith("<svg"));
      const png = await Deno.readFile(`${out}/curves.png`);
      deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      const meta = await loadCheckpoint(lenet(), `${out}/model.safetensors`);
      equal(JSON.parse(meta.config).limit, 512);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
);

Deno.test("parseTrainArgs refuses an empty --out or --data and non-decimal numbers (#6.1, #6.11)", () => {
  const cases: [string[], RegExp][] = [
    [["--out", ""], /--out must be a directory path, got an empty string/],
    [["--out", "  "], /--out must be a directory path/],
    [["--data", ""], /--data must be a directory path/],
    [["--epochs", "0x10"], /--epochs must be a whole number >= 1 in decimal notation, got "0x10"/],
    [["--batch-size", "0b101"], /--batch-size must be .* in decimal notation, got "0b101"/],
    [["--lr", "0o7"], /--lr must be a number > 0 in decimal notation, got "0o7"/],
    [["--lr", "Infinity"], /--lr must be a number > 0 in decimal notation/],
  ];
  for (const [args, msg] of cases) {
    try {
      parseTrainArgs(args);
    } catch (e) {
      ok(e instanceof UsageError && msg.test(e.message), `${args}: ${(e as Error).message}`);
      continue;
    }
    throw new Error(`${JSON.stringify(args)} was accepted`);
  }
  const c = parseTrainArgs(["--lr", "1e-1", "--epochs", "+3"]);
  ok(c !== "help" && c.lr === 0.1 && c.epochs === 3);
});

async function withOut(fn: (out: string) => Promise<void>): Promise<void> {
  const out = await Deno.makeTempDir();
  try {
    await fn(out);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

gpuTest(
  "deno task train: a diverging run exits 1 with one line and no non-finite checkpoint (#6.3)",
  async () => {
    await withOut(async (out) => {
      const r = await runCli(["--lr", "1e30", "--limit", "512", "--epochs", "2", "--out", out]);
      equal(r.code, 1, r.stderr);
      const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
      equal(errors.length, 1, r.stderr);
      ok(
        /^error: training diverged: the training loss is NaN at epoch 1, step \d+/.test(errors[0]),
        errors[0],
      );
      ok(errors[0].includes("no checkpoint was written"), errors[0]);
      ok(!(await Deno.stat(`${out}/model.safetensors`).then(() => true, () => false)));
      const lines = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      deepEqual(lines.at(-1).type, "diverged");
      equal(lines.at(-1).loss, "NaN");
      ok(lines.every((l) => l.type !== "epoch"), "no epoch line with a null loss");
    });
  },
);

gpuTest(
  "deno task train --limit 257: the lone last example is left out, said once (#6.7)",
  async () => {
    await withOut(async (out) => {
      const r = await runCli(["--limit", "257", "--epochs", "1", "--out", out]);
      equal(r.code, 0, r.stderr);
      equal(r.stdout.split("\n").filter((l) => l.startsWith("note:")).length, 1, r.stdout);
      ok(r.stdout.includes("each epoch trains on 256 examples"), r.stdout);
      ok(/epoch 1: loss \d\.\d{3}/.test(r.stdout), r.stdout);
      await loadCheckpoint(lenet(), `${out}/model.safetensors`);
    });
  },
);

gpuTest(
  "deno task train: the model is saved before the charts; a failed chart is a warning (#6.8)",
  async () => {
    await withOut(async (out) => {
      await Deno.mkdir(`${out}/curves.svg`); // a directory where the chart goes: writing it fails
      const r = await runCli(["--limit", "256", "--epochs", "1", "--out", out, "--overwrite"]);
      equal(r.code, 0, r.stderr);
      ok(r.stderr.includes("warning: the charts could not be drawn"), r.stderr);
      const meta = await loadCheckpoint(lenet(), `${out}/model.safetensors`);
      equal(meta.epochs, "1");
      ok(r.stdout.includes("wrote") && !r.stdout.includes("curves.png"), r.stdout);
    });
  },
);

gpuTest("deno task train: a run never overwrites an earlier one silently (#6.11)", async () => {
  await withOut(async (out) => {
    await Deno.writeTextFile(`${out}/metrics.jsonl`, '{"type":"config"}\n');
    const r = await runCli(["--limit", "256", "--epochs", "1", "--out", out]);
    equal(r.code, 2, r.stderr);
    ok(r.stderr.includes(`--out ${out} already holds a run (metrics.jsonl)`), r.stderr);
    ok(r.stderr.includes("--overwrite"), r.stderr);
    equal(await Deno.readTextFile(`${out}/metrics.jsonl`), '{"type":"config"}\n', "untouched");
  });
});

gpuTest(
  "deno task train: a batch too large for the device says to lower --batch-size (#6.10)",
  async () => {
    await withOut(async (out) => {
      const r = await runCli([
        "--batch-size",
        "10000",
        "--limit",
        "10000",
        "--epochs",
        "1",
        "--out",
        out,
      ]);
      equal(r.code, 1, r.stderr);
      ok(/error: Cannot allocate .* lower --batch-size \(now 10000\)/.test(r.stderr), r.stderr);
    });
  },
);
