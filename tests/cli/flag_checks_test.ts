import { equal, ok } from "node:assert/strict";
import { parseTrainArgs, UsageError } from "../../src/cli/train.ts";
import { GHOST_BATCH, lastBatchNote } from "../../src/cli/flag_checks.ts";
import { runCli, TRAIN_SCRIPT } from "./run_cli.ts";

const script = TRAIN_SCRIPT;

/** Runs the CLI with data that does not exist: a flag error must come before the data load. */
function runCliNoData(args: string[]): Promise<{ code: number; stderr: string }> {
  return runCli(["--data", "/nonexistent/fashion-mnist", ...args]);
}

const refusals: [string[], RegExp][] = [
  [["--batch-size", "1"], /--batch-size 1 with --norm batch: batch normalization needs at least 2/],
  [["--batch-size", "1", "--norm", "ghost"], /--batch-size 1 with --norm ghost/],
  [
    ["--batch-size", "33", "--norm", "ghost"],
    /--batch-size 33 with --norm ghost: .* a last one of a single example/,
  ],
  [["--batch-size", "257", "--norm", "ghost"], /--batch-size 257 with --norm ghost/],
  [["--limit", "1"], /--limit 1 with --norm batch .* leaving nothing to train on/],
  [["--limit", "33", "--norm", "ghost"], /--limit 33 with --norm ghost .* pass --limit 34/],
  [
    ["--seed", "4294967296"],
    /--seed must be a whole number from 0 to 4294967295 .* got 4294967296/,
  ],
  [["--lr", "1e-320"], /--lr 1e-320 is 0 in float32/],
  [["--lr", "1e39"], /--lr 1e\+39 is Infinity in float32/],
];

Deno.test("parseTrainArgs refuses flags whose implications cannot work (#25.9)", () => {
  for (const [args, msg] of refusals) {
    try {
      parseTrainArgs(args);
    } catch (e) {
      ok(e instanceof UsageError && msg.test(e.message), `${args}: ${(e as Error).message}`);
      continue;
    }
    throw new Error(`${args.join(" ")} was accepted`);
  }
  // What is fine stays fine: batch 1 without batch norm, ghost batches that divide evenly,
  // the largest seed, a tiny learning rate that float32 holds.
  for (
    const args of [
      ["--batch-size", "1", "--norm", "layer"],
      ["--batch-size", "64", "--norm", "ghost"],
      ["--batch-size", "34", "--norm", "ghost"],
      ["--seed", "4294967295"],
      ["--lr", "1e-40"],
      ["--limit", "1", "--norm", "none"],
    ]
  ) {
    ok(parseTrainArgs(args) !== "help", args.join(" "));
  }
});

Deno.test("deno task train reports what its flags imply before loading data (#25.9)", async () => {
  for (const [args, msg] of refusals.slice(0, 1).concat(refusals.slice(5, 7))) {
    const r = await runCliNoData(args);
    equal(r.code, 2, `${args}: ${r.stderr}`);
    ok(msg.test(r.stderr), `${args}: ${r.stderr}`);
    ok(!r.stderr.includes("was not found"), `${args}: the data was looked for first`);
  }
});

Deno.test("deno task train reports an unusable --out before loading data (#25.9)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/a-file`;
    await Deno.writeTextFile(file, "not a folder");
    await Deno.symlink(`${dir}/nowhere`, `${dir}/dangling`);
    const cases: [string, RegExp][] = [
      [file, new RegExp(`--out ${file} is a file, not a directory`)],
      [
        `${dir}/dangling`,
        new RegExp(`--out ${dir}/dangling is a symbolic link to ${dir}/nowhere, which does not`),
      ],
      [`${file}/sub`, new RegExp(`--out ${file}/sub cannot be created`)],
    ];
    if (Deno.uid() !== 0) { // root writes into read-only folders
      await Deno.mkdir(`${dir}/ro`, { mode: 0o555 });
      cases.push([`${dir}/ro`, new RegExp(`--out ${dir}/ro is not writable`)]);
    }
    for (const [out, msg] of cases) {
      const r = await runCliNoData(["--out", out]);
      equal(r.code, 2, `${out}: ${r.stderr}`);
      ok(msg.test(r.stderr), `${out}: ${r.stderr}`);
      ok(!r.stderr.includes("was not found"), `${out}: the data was looked for first`);
    }
    equal(await Deno.readTextFile(file), "not a folder");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lastBatchNote leaves out a last batch or ghost batch of one example", () => {
  equal(lastBatchNote(300, 256, "none"), undefined);
  equal(lastBatchNote(257, 256, "layer"), undefined);
  ok(lastBatchNote(257, 256, "batch")!.includes("trains on 256 examples"));
  // 256 + 2 * 32 + 1: the last batch of 65 ends in a ghost batch of one.
  const n = 256 + 2 * GHOST_BATCH + 1;
  equal(lastBatchNote(n, 256, "batch"), undefined);
  ok(lastBatchNote(n, 256, "ghost")!.includes(`a last batch of ${2 * GHOST_BATCH + 1}`));
});

Deno.test("deno task train --norm ghost leaves out a last ghost batch of one example (#25.9)", async () => {
  const out = await Deno.makeTempDir();
  try {
    // 289 = 256 + 33: the last batch of 33 splits into ghost batches of 32 and 1.
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        script,
        "--norm",
        "ghost",
        "--limit",
        "289",
        "--epochs",
        "1",
        "--out",
        out,
      ],
      env: { XDG_RUNTIME_DIR: "/tmp/xdg", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const [stdout, stderr] = [r.stdout, r.stderr].map((b) => new TextDecoder().decode(b));
    equal(r.code, 0, stderr);
    ok(stdout.includes("note: 289 examples in batches of 256 leave a last batch of 33"), stdout);
    ok(stdout.includes("each epoch trains on 256 examples"), stdout);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
