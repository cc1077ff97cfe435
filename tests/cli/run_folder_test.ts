/**
 * A run's folder (issue 25, points 1 to 3): one run at a time, created exclusively, never
 * written through a planted symlink, replaced whole by --overwrite, every file carrying
 * the run's id.
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { RunFolder } from "../../src/cli/run_folder.ts";
import { pngTexts } from "../../src/cli/png_text.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/train/checkpoint.ts";
import { runCli } from "./run_cli.ts";

const FILES = ["metrics.jsonl", "model.safetensors", "curves.svg", "curves.png"];

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

/** An earlier run's files, each saying it is the old one. */
async function oldRun(out: string): Promise<void> {
  await Deno.writeTextFile(`${out}/metrics.jsonl`, '{"type":"config","runId":"old"}\n');
  await Deno.writeFile(
    `${out}/model.safetensors`,
    encodeSafetensors({ w: { dtype: "F32", shape: [1], data: Float32Array.of(1) } }, {
      run_id: "old",
    }),
  );
  await Deno.writeTextFile(`${out}/curves.svg`, "<svg><!-- old --></svg>");
}

Deno.test("RunFolder: one run per folder; default folders are made anew, even at once (#25.2)", async () => {
  await withDir(async (dir) => {
    // Two runs started in the same second into the same default name: two folders.
    const [a, b] = await Promise.all(
      [0, 1].map(() => RunFolder.open(`${dir}/runs/t`, { files: FILES, unique: true })),
    );
    try {
      deepEqual([a.path, b.path].sort(), [`${dir}/runs/t`, `${dir}/runs/t-2`]);
      ok(a.id !== b.id);
    } finally {
      a[Symbol.dispose]();
      b[Symbol.dispose]();
    }
    // Two runs into one named folder at once: exactly one gets it, the other is refused.
    const both = await Promise.allSettled(
      [0, 1].map(() => RunFolder.open(`${dir}/named`, { files: FILES })),
    );
    const won = both.filter((r) => r.status === "fulfilled");
    const lost = both.filter((r) => r.status === "rejected");
    equal(won.length, 1);
    ok(
      new RegExp(`--out ${dir}/named is in use by another run \\(PID ${Deno.pid}, run `)
        .test(String((lost[0] as PromiseRejectedResult).reason)),
      String((lost[0] as PromiseRejectedResult).reason),
    );
    (won[0] as PromiseFulfilledResult<RunFolder>).value[Symbol.dispose]();
    // Released: the next run gets it.
    using again = await RunFolder.open(`${dir}/named`, { files: FILES });
    equal(again.path, `${dir}/named`);
  });
});

Deno.test("deno task train into a folder in use is refused at once, naming the run's PID (#25.2)", async () => {
  await withDir(async (out) => {
    using held = await RunFolder.open(out, { files: FILES });
    const t0 = performance.now();
    // Nonexistent data: a run that got past the folder would fail on the data instead.
    const r = await runCli(["--out", out, "--data", `${out}/nodata`]);
    equal(r.code, 2, r.stderr);
    ok(
      r.stderr.includes(`--out ${out} is in use by another run (PID ${Deno.pid}, run ${held.id}`),
      r.stderr,
    );
    ok(performance.now() - t0 < 30_000);
    deepEqual(names(out), [".lock"], "nothing written");
  });
});

Deno.test("deno task train refuses a run's file that is a symlink, and never writes through one (#25.1)", async () => {
  await withDir(async (dir) => {
    const out = `${dir}/run`;
    await Deno.mkdir(out);
    const victim = `${dir}/victim.txt`;
    await Deno.writeTextFile(victim, "precious");
    await oldRun(out);
    await Deno.remove(`${out}/metrics.jsonl`);
    await Deno.symlink(victim, `${out}/metrics.jsonl`);
    const r = await runCli(["--out", out, "--overwrite", "--data", `${dir}/nodata`]);
    equal(r.code, 2, r.stderr);
    ok(r.stderr.includes(`${out}/metrics.jsonl is a symbolic link (to ${victim})`), r.stderr);
    equal(await Deno.readTextFile(victim), "precious");
  });
});

Deno.test("deno task train --overwrite refuses a folder that holds more than a run (#25.3)", async () => {
  await withDir(async (out) => {
    await oldRun(out);
    await Deno.writeTextFile(`${out}/notes.txt`, "mine");
    const r = await runCli(["--out", out, "--overwrite", "--data", `${out}/nodata`]);
    equal(r.code, 2, r.stderr);
    ok(r.stderr.includes(`${out} also holds notes.txt`), r.stderr);
    equal(await Deno.readTextFile(`${out}/notes.txt`), "mine");
    ok(await exists(`${out}/model.safetensors`), "the old run is kept");
  });
});

Deno.test("deno task train --overwrite stopped before its first checkpoint leaves no part of the old run (#25.3)", async () => {
  await withDir(async (dir) => {
    const out = `${dir}/run`;
    await Deno.mkdir(out);
    await oldRun(out);
    // lr 1e30 diverges in the first epoch: the run stops before any checkpoint.
    const r = await runCli([
      "--out",
      out,
      "--overwrite",
      "--lr",
      "1e30",
      "--limit",
      "512",
      "--epochs",
      "2",
    ]);
    equal(r.code, 1, r.stderr);
    ok(r.stderr.includes("no checkpoint was written"), r.stderr);
    deepEqual(names(out), [".lock", "metrics.jsonl"], "the old model and chart are gone");
    deepEqual(names(dir), ["run"], "nothing left aside");
    const config = JSON.parse((await Deno.readTextFile(`${out}/metrics.jsonl`)).split("\n")[0]);
    ok(typeof config.runId === "string" && config.runId !== "old", config.runId);
  });
});

Deno.test("deno task train: every file of a run carries its id; a planted temporary symlink is not followed (#25.1, #25.3)", async () => {
  await withDir(async (dir) => {
    const out = `${dir}/run`;
    await Deno.mkdir(out);
    const victim = `${dir}/victim.txt`;
    await Deno.writeTextFile(victim, "precious");
    // 0d6f957's fixed temporary name, planted: the checkpoint was written through it.
    await Deno.symlink(victim, `${out}/.model.safetensors.tmp`);
    const r = await runCli(["--out", out, "--limit", "256", "--epochs", "1"]);
    equal(r.code, 0, r.stderr);
    equal(await Deno.readTextFile(victim), "precious");
    ok((await Deno.lstat(`${out}/model.safetensors`)).isFile);
    const metrics = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n");
    const id = JSON.parse(metrics[0]).runId as string;
    ok(/^\d{8}T\d{6}-[0-9a-f]{8}$/.test(id), id);
    const model = decodeSafetensors(await Deno.readFile(`${out}/model.safetensors`));
    equal(model.metadata.run_id, id);
    ok((await Deno.readTextFile(`${out}/curves.svg`)).includes(`<!-- bnlab run ${id} -->`));
    equal(pngTexts(await Deno.readFile(`${out}/curves.png`))["bnlab-run"], id);
    equal(JSON.parse(await Deno.readTextFile(`${out}/.lock`)).runId, id);
    // And a second run into it is refused while the first's files are there.
    await rejects(() => RunFolder.open(out, { files: FILES }), /already holds a run/);
  });
});

Deno.test("RunFolder.resume keeps the run's id and folder; append cuts what the state does not account for (#24.5)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let id: string;
    {
      using run = await RunFolder.open(dir, { files: FILES });
      id = run.id;
      await Deno.writeTextFile(run.file("metrics.jsonl"), "a\nb\nc\n");
    }
    await rejects(
      () => RunFolder.resume(`${dir}/absent`, () => Promise.resolve(id)),
      /--resume .*absent is absent/,
    );
    {
      using again = await RunFolder.resume(dir, () => Promise.resolve(id));
      equal(again.id, id);
      equal(again.path, dir);
      equal(JSON.parse(await Deno.readTextFile(`${dir}/.lock`)).runId, id);
      // A second resume while the first holds the folder is refused, naming the holder.
      await rejects(
        () => RunFolder.resume(dir, () => Promise.resolve(id)),
        new RegExp(`in use by another run \\(PID ${Deno.pid}, run ${id}`),
      );
      await rejects(() => again.append("metrics.jsonl", 100), /holds 6 bytes, fewer than the 100/);
      const { file, cut } = await again.append("metrics.jsonl", 4);
      equal(cut, 1);
      await file.write(new TextEncoder().encode("d\n"));
      file.close();
      equal(await Deno.readTextFile(`${dir}/metrics.jsonl`), "a\nb\nd\n");
    }
    // A refusal inside identify releases the lock.
    await rejects(
      () => RunFolder.resume(dir, () => Promise.reject(new Error("not a run"))),
      /not a run/,
    );
    using last = await RunFolder.resume(dir, () => Promise.resolve(id));
    equal(last.id, id, "the lock was released by the refused resume");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
