/**
 * Training speed of LeNet on WebGPU, from batch 2 to 256, against PyTorch 1.13 on the CPU of
 * the same machine, timed in the same run on the same loop.
 *
 * `deno bench -A bench/train/train_bench.ts`: one full training step (zeroGrad, forward,
 * cross-entropy, backward, SGD) per iteration at batch 256, four steps per timed sample and
 * one host wait, so the ~11 ms of a readback is spread as it is in `fit`.
 *
 * `deno run -A bench/train/train_bench.ts [--batch 2,8,32,256] [--steps N] [--kernels]
 * [--baseline COMMIT [--rounds R]]`, for each batch size in the list (default 256), each in a
 * process of its own when there are several (a process's first batch size changes how fast
 * later ones run):
 *
 * 1. ms/step of both models on steps.ts's loop (5 warm-up steps, then 200 steps, 50 from batch
 *    32 on, or N, and one read of the loss), then of PyTorch on the same loop
 *    (bench/peers/torch_steps.py, one thread, in a subprocess), bnlab and PyTorch in turn
 *    per batch size so that both see the same load; at the end a table per model.
 * 2. Where a step's time goes: forward, loss + backward and SGD, the JS thread's encoding of
 *    a step, and each layer's forward and backward on its own, each phase timed by
 *    `msPerCall` (several runs between two host waits, less an empty wait).
 * 3. With `--kernels`: the kernels by device time per step, from GPU timestamps
 *    (`gpu.profileLaunches`), against the step's time with and without the profiling.
 * 4. With `--baseline`: the same loop timed on COMMIT too, checked out in a temporary
 *    `git worktree`: `steps.ts` runs there and here, and PyTorch, in turn, a process per batch
 *    size, R rounds (default 3), rotating which goes first; it prints each tree's ms/step, the
 *    speedup and the ratio to PyTorch per round (median, min-max), then removes the worktree.
 *
 * @module
 */
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { flush, type KernelTime, profileLaunches, queueStats, sync } from "../../src/gpu/queue.ts";
import { adapterInfo, getDevice } from "../../src/gpu/device.ts";
import { lenet } from "../../src/models/lenet.ts";
import { BATCH, LR, msPerStep, setup, stepsFor, WARMUP } from "./steps.ts";
import { msPerCall } from "../timing.ts";
import { checkSpec, LENET_BN, LENET_PLAIN } from "../peers/lenet_spec.ts";
import { findTorch } from "../peers/torch.ts";

await getDevice();

type Norm = "batch" | "none";
const NORMS = ["batch", "none"] as const;
const NAME: Record<Norm, string> = { batch: "LeNet+BN", none: "plain LeNet" };

if (!import.meta.main) { // deno bench
  for (const norm of NORMS) {
    const s = setup(norm);
    s.step(); // compile the pipelines outside the timing
    await sync();
    Deno.bench({
      name: `${NAME[norm]} train step x4, batch ${BATCH}`,
      group: "lenet train step",
      baseline: norm === "none",
      async fn(b) {
        b.start();
        for (let i = 0; i < 4; i++) s.step();
        await sync();
        b.end();
      },
    });
  }
}

/** ms/step of both models at one batch size. */
type PerModel = Record<Norm, number>;
/** PyTorch's ms/step by batch size, or why there is none (the text of a table cell). */
type TorchResult = Map<number, PerModel> | string;

const fmt = (ms: number) => ms.toFixed(ms < 10 ? 2 : 1);

async function command(cmd: string, args: string[], cwd: string, stdin?: string) {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { ok: r.success, code: r.code, stdout: text(r.stdout), stderr: text(r.stderr) };
}

async function git(args: string[], cwd: string): Promise<string> {
  const r = await command("git", args, cwd);
  if (!r.ok) throw new Error(`git ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout.trim();
}

/** ms/step by batch size and model, from the JSON lines of steps.ts or torch_steps.py. */
function parseSteps(stdout: string): Map<number, PerModel> {
  const out = new Map<number, PerModel>();
  for (const line of stdout.split("\n").filter((l) => l.startsWith("{"))) {
    const { model, batch, msPerStep } = JSON.parse(line);
    if (!out.has(batch)) out.set(batch, {} as PerModel);
    out.get(batch)![model as Norm] = msPerStep;
  }
  return out;
}

/** The models as torch_steps.py reads them, each spec checked against bnlab's `lenet()`. */
function torchModels(): string {
  const specs = { batch: LENET_BN, none: LENET_PLAIN };
  for (const norm of NORMS) {
    using net = lenet({ norm });
    checkSpec(norm === "batch" ? "LENET_BN" : "LENET_PLAIN", specs[norm], net.stateDict());
  }
  return JSON.stringify({
    batch: { spec: LENET_BN, lr: LR.batch },
    none: { spec: LENET_PLAIN, lr: LR.none },
  });
}

const torch = await findTorch();
let torchVersion = "PyTorch";

/** PyTorch's ms/step on the same loop (torch_steps.py), or why there is none. */
async function torchSteps(batches: number[], steps?: number): Promise<TorchResult> {
  if ("absent" in torch) return "n/a (apt-get install python3-torch)";
  const script = new URL("../peers/torch_steps.py", import.meta.url).pathname;
  const args = [script, "--batch", batches.join(","), ...(steps ? ["--steps", `${steps}`] : [])];
  const r = await command(torch.python, args, Deno.cwd(), torchModels());
  if (!r.ok) {
    console.error(r.stderr);
    return `n/a (torch_steps.py failed, exit ${r.code}; its error is above)`;
  }
  const first = JSON.parse(r.stdout.split("\n")[0]);
  torchVersion = `PyTorch ${first.torch} (${first.threads} thread${first.threads > 1 ? "s" : ""})`;
  return parseSteps(r.stdout);
}

/** One batch size's figures: bnlab's and PyTorch's ms/step, from the same minutes. */
interface Measured {
  batch: number;
  steps: number;
  bnlab: PerModel;
  torch: PerModel | string;
  /** `PyTorch 1.13.0 (1 thread)`. */
  peer: string;
}

/** bnlab's loop for both models (in this process), then PyTorch's (a subprocess). */
async function measure(batch: number, steps?: number): Promise<Measured> {
  const n = steps ?? stepsFor(batch);
  const bnlab = {} as PerModel;
  for (const norm of NORMS) bnlab[norm] = await msPerStep(norm, n, batch);
  const peer = await torchSteps([batch], n);
  const torch = typeof peer === "string" ? peer : peer.get(batch)!;
  console.error(
    `  batch ${batch}: bnlab ${fmt(bnlab.batch)} / ${fmt(bnlab.none)} ms/step, PyTorch ${
      typeof torch === "string" ? torch : `${fmt(torch.batch)} / ${fmt(torch.none)}`
    } (LeNet+BN / plain LeNet, ${n} steps)`,
  );
  return { batch, steps: n, bnlab, torch, peer: torchVersion };
}

/**
 * One batch size, all of it in this process: the loop (bnlab, then PyTorch), where a step's
 * time goes, and with `kernels` the per-kernel tables.
 */
async function oneBatch(batch: number, steps: number | undefined, kernelTables: boolean) {
  const m = await measure(batch, steps);
  for (const norm of NORMS) await breakdown(norm, m);
  if (kernelTables) { for (const norm of NORMS) await kernels(norm, m.batch, m.steps); }
  return m;
}

/**
 * Each batch size in a process of its own (this file with `--batch B --child`): the first
 * batch size a process runs changes how fast later ones do (README.md, "Small batches"), so
 * each is measured as a process that starts with it, whatever the list's order.
 */
async function eachInItsOwnProcess(
  batches: number[],
  steps: number | undefined,
  kernelTables: boolean,
): Promise<Measured[]> {
  const out: Measured[] = [];
  for (const batch of batches) {
    const args = ["run", "-A", new URL(import.meta.url).pathname, "--batch", `${batch}`, "--child"];
    if (steps) args.push("--steps", `${steps}`);
    if (kernelTables) args.push("--kernels");
    const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" })
      .spawn();
    let rest = "";
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith(ROW)) out.push(JSON.parse(line.slice(ROW.length)));
        else console.log(line);
      }
    }
    const status = await child.status;
    if (!status.success) {
      throw new Error(`train_bench at batch ${batch} failed (exit ${status.code})`);
    }
  }
  return out;
}

/** The prefix of the line by which a `--child` hands its figures back. */
const ROW = "@train_bench row ";

function printTables(rows: Measured[]): void {
  for (const norm of NORMS) {
    console.log(
      `\n${NAME[norm]} (lr ${LR[norm].toFixed(1)}), ms per training step, bnlab and ` +
        `${rows[0].peer} in turn in this run (above 1x, bnlab takes longer):\n`,
    );
    console.log("| batch | bnlab ms/step | PyTorch ms/step | bnlab / PyTorch |");
    console.log("| ----: | ------------: | --------------: | --------------: |");
    for (const r of rows) {
      const ours = r.bnlab[norm];
      const theirs = typeof r.torch === "string" ? r.torch : fmt(r.torch[norm]);
      const ratio = typeof r.torch === "string" ? "n/a" : `${(ours / r.torch[norm]).toFixed(2)}x`;
      console.log(`| ${r.batch} | ${fmt(ours)} | ${theirs} | ${ratio} |`);
    }
  }
}

/**
 * Seconds per run of `fn`: bench/timing.ts's `msPerCall`, 7 runs between two host waits
 * less an empty wait, best of 3 trials (the first compiles the pipelines). One wait per run
 * would put its jitter (a few ms on llvmpipe) on passes of 1 ms.
 */
async function timed(fn: () => void): Promise<number> {
  return Math.max(0, await msPerCall(fn, { reps: 7, trials: 3 })) / 1000;
}

/** Where a step's time goes at `batch`: phases, the JS thread's encoding, each layer alone. */
async function breakdown(norm: Norm, m: Measured): Promise<void> {
  const { batch } = m;
  const perStep = m.bnlab[norm] / 1000;
  const s = setup(norm, batch);
  s.step();
  await sync();
  const peer = typeof m.torch === "string"
    ? `PyTorch ${m.torch}`
    : `${torchVersion}, same loop, this run: ${fmt(m.torch[norm])} ms/step, bnlab ` +
      `${(m.bnlab[norm] / m.torch[norm]).toFixed(2)}x its time`;
  console.log(
    `\n${NAME[norm]}, batch ${batch}: ${fmt(perStep * 1000)} ms/step, ` +
      `${Math.round(batch / perStep).toLocaleString("en-US")} examples/s (${peer})`,
  );

  // The JS thread's share: encoding a step (autograd, buffers, bind groups, launches) without
  // submitting it. It overlaps the previous submission's work (a submit waits only for the
  // one before), on llvmpipe sharing the CPU cores with it; on a GPU it alone can bound the
  // step rate.
  const encodeMs: number[] = [];
  let launches = 0;
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    s.encode();
    encodeMs.push(performance.now() - t);
    launches = queueStats().pendingLaunches;
    flush();
    if (i % 5 === 4) await sync();
  }
  const encode = encodeMs.sort((a, b) => a - b)[10] / 1000; // median, seconds

  // Phases of one step, each between host waits.
  const fwd = await timed(() => tidy(() => void s.net.forward(s.x)));
  const fwdLossBwd = await timed(
    () => tidy(() => s.lossFn.forward(s.net.forward(s.x), s.y).backward()),
  );
  const opt = await timed(() => tidy(() => s.sgd.step()));
  s.sgd.zeroGrad();
  const ms = (v: number) => `${(v * 1000).toFixed(batch < 32 ? 2 : 1).padStart(7)} ms`;
  const share = (v: number) => `${Math.round((100 * v) / perStep).toString().padStart(3)}%`;
  const bwd = Math.max(0, fwdLossBwd - fwd);
  console.log(`  forward            ${ms(fwd)} ${share(fwd)} of a step`);
  console.log(`  loss + backward    ${ms(bwd)} ${share(bwd)}`);
  console.log(`  SGD step           ${ms(opt)} ${share(opt)}`);
  const alone = Math.round(batch / encode).toLocaleString("en-US");
  console.log(
    `  encoding (JS)      ${ms(encode)} ${share(encode)}   ${launches} launches: the JS ` +
      `thread alone allows ${alone} examples/s`,
  );

  // Each layer alone: forward, then backward from a random upstream gradient. A pair that
  // Sequential fuses (BatchNorm + activation, activation + max pool) is timed as the one
  // pass it runs as.
  console.log("  per layer (forward / backward):");
  let act = s.x;
  for (const { first, modules, name, forward } of s.net.passes()) {
    const key = String(first);
    const inp = act.detach();
    inp.requiresGrad = act !== s.x; // as in training: no gradient for the images
    const f = await timed(() => tidy(() => void forward(inp)));
    const out = tidy(() => noGrad(() => forward(inp)));
    const g = Tensor.randn(out.shape, { seed: 2 });
    const fb = await timed(
      () =>
        tidy(() => {
          forward(inp).backward(g);
          inp.grad?.dispose();
          inp.grad = null;
        }),
    );
    for (const p of modules.flatMap((m) => m.parameters())) {
      p.grad?.dispose();
      p.grad = null;
    }
    console.log(
      `    ${key.padStart(2)} ${name.padEnd(20)} ${ms(f)} / ${ms(Math.max(0, fb - f))}` +
        `   out [${out.shape.join(", ")}]`,
    );
    g.dispose();
    if (act !== s.x) act.dispose();
    inp.dispose();
    act = out;
  }
}

/**
 * The kernels of a step at `batch` by device time, from `profileLaunches`' GPU timestamps:
 * two profiled runs of `steps` steps, between two runs without profiling (ABBA, so that a
 * drift in the machine's load falls on both), each ended by one read as in the table's loop.
 */
async function kernels(norm: Norm, batch: number, steps: number): Promise<void> {
  const s = setup(norm, batch);
  for (let i = 0; i < WARMUP; i++) s.step();
  await s.read();
  const batched: number[] = [], profiled: number[] = [];
  const total = new Map<string, KernelTime>();
  for (const mode of ["batched", "profiled", "profiled", "batched"]) {
    const t0 = performance.now();
    if (mode === "batched") {
      for (let i = 0; i < steps; i++) s.step();
      await s.read();
      batched.push((performance.now() - t0) / steps);
      continue;
    }
    // profileLaunches' one read of the timestamps waits for the steps, as s.read() does
    const got = await profileLaunches(() => {
      for (let i = 0; i < steps; i++) s.step();
    });
    profiled.push((performance.now() - t0) / steps);
    for (const k of got) {
      const key = `${k.label} ${k.entryPoint}`;
      const t = total.get(key) ?? { ...k, launches: 0, us: 0 };
      t.launches += k.launches;
      t.us += k.us;
      total.set(key, t);
    }
  }
  const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
  const step = mean(batched), stepProfiled = mean(profiled);
  const n = 2 * steps;
  const list = [...total.values()].sort((a, b) => b.us - a.us);
  const kernelUs = list.reduce((t, k) => t + k.us, 0) / n;
  const launches = list.reduce((t, k) => t + k.launches, 0) / n;
  const pct = (v: number) => `${Math.round(100 * v)}%`;
  console.log(
    `\n${NAME[norm]}, batch ${batch}: ${launches} launches per step. Step ${fmt(step)} ms ` +
      `(runs ${batched.map(fmt).join(", ")}); profiled, each launch in a pass of its own with ` +
      `two timestamps, ${fmt(stepProfiled)} ms (${profiled.map(fmt).join(", ")}): ` +
      `${(stepProfiled / step).toFixed(2)}x. Kernels on the device ${fmt(kernelUs / 1000)} ms ` +
      `per step: ${pct(kernelUs / 1000 / step)} of the step, ${
        pct(kernelUs / 1000 / stepProfiled)
      } of the profiled one (GPU timestamps over ${n} steps).\n`,
  );
  console.log("| kernel | entry point | us/step | launches/step | share of kernel time |");
  console.log("| ------ | ----------- | ------: | ------------: | -------------------: |");
  for (const k of list) {
    const per = k.launches / n;
    console.log(
      `| ${k.label} | ${k.entryPoint} | ${(k.us / n).toFixed(1)} | ` +
        `${Number.isInteger(per) ? per : per.toFixed(2)} | ${pct(k.us / n / kernelUs)} |`,
    );
  }
}

/** ms/step by batch size and model from one run of steps.ts (`script`) in the tree at `cwd`. */
async function stepsIn(cwd: string, script: string, batches: number[], steps?: number) {
  const args = ["run", "-A", script, "--batch", batches.join(",")];
  const r = await command(
    Deno.execPath(),
    [...args, ...(steps ? ["--steps", `${steps}`] : [])],
    cwd,
  );
  if (!r.ok) throw new Error(`deno ${args.join(" ")} failed in ${cwd}:\n${r.stderr}`);
  return parseSteps(r.stdout);
}

/**
 * Times both models at every batch size here, at `commit` (a temporary worktree) and in
 * PyTorch, in turn, `rounds` times.
 */
async function compareWith(
  commit: string,
  batches: number[],
  steps: number | undefined,
  rounds: number,
): Promise<void> {
  const root = await git(["rev-parse", "--show-toplevel"], Deno.cwd());
  const here = await git(["rev-parse", "--short", "HEAD"], root);
  const dir = await Deno.makeTempDir({ prefix: "bnlab-baseline-" });
  await git(["worktree", "add", "--detach", dir, commit], root);
  try {
    // The same measuring code in both trees: this steps.ts, copied beside the old sources.
    const copy = "bench/train/steps_of_current_tree.ts";
    await Deno.copyFile(new URL("./steps.ts", import.meta.url), `${dir}/${copy}`);
    // Each batch size in a process of its own for each side, as in the table above.
    type Side = "baseline" | "current" | "torch";
    const run: Record<Side, (batch: number) => Promise<Map<number, PerModel> | string>> = {
      baseline: (batch) => stepsIn(dir, copy, [batch], steps),
      current: (batch) => stepsIn(root, "bench/train/steps.ts", [batch], steps),
      torch: (batch) => torchSteps([batch], steps),
    };
    // got[side][round]: that round's ms/step by batch size and model, or why none
    const got: Record<Side, (Map<number, PerModel> | string)[]> = {
      baseline: [],
      current: [],
      torch: [],
    };
    const sides: Side[] = ["baseline", "current", "torch"];
    for (let r = 0; r < rounds; r++) {
      for (const side of sides) got[side].push(new Map());
      for (const [b, batch] of batches.entries()) {
        for (let k = 0; k < 3; k++) {
          const side = sides[(r + b + k) % 3];
          const m = await run[side](batch);
          const into = got[side][r];
          if (typeof m === "string") got[side][r] = m;
          else if (typeof into !== "string") into.set(batch, m.get(batch)!);
        }
      }
      console.error(`  round ${r + 1} of ${rounds} done`);
    }
    const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
    const range = (a: number[], unit = "") =>
      `${median(a).toFixed(2)}${unit} (${Math.min(...a).toFixed(2)}-${Math.max(...a).toFixed(2)})`;
    const of = (side: Side, batch: number, norm: Norm) =>
      got[side].map((m) => typeof m === "string" ? NaN : m.get(batch)![norm]);
    const absent = got.torch.find((m) => typeof m === "string") as string | undefined;
    console.log(
      `\nbaseline ${commit} vs this tree (${here} and any uncommitted changes) vs ` +
        `${torchVersion}, ${rounds} rounds, each side in turn (the first rotating), each ` +
        `batch size in a process of its own; steps per ` +
        `run: ${steps ?? "200, 50 from batch 32 on"}; ms/step median (min-max), ratios per ` +
        `round:`,
    );
    for (const norm of NORMS) {
      console.log(`\n${NAME[norm]}:\n`);
      console.log(
        `| batch | ${commit} ms/step | this tree ms/step | speedup | PyTorch ms/step | ` +
          `${commit} / PyTorch | this tree / PyTorch |`,
      );
      console.log("| ----: | ---: | ---: | ---: | ---: | ---: | ---: |");
      for (const batch of batches) {
        const base = of("baseline", batch, norm), cur = of("current", batch, norm);
        const peer = of("torch", batch, norm);
        const speedup = base.map((b, i) => b / cur[i]);
        const cells = absent ? [absent, "n/a", "n/a"] : [
          range(peer),
          range(base.map((b, i) => b / peer[i]), "x"),
          range(cur.map((c, i) => c / peer[i]), "x"),
        ];
        console.log(
          `| ${batch} | ${range(base)} | ${range(cur)} | ${range(speedup, "x")} | ` +
            `${cells.join(" | ")} |`,
        );
      }
    }
  } finally {
    await git(["worktree", "remove", "--force", dir], root);
  }
}

if (import.meta.main) {
  const OPTIONS = ["--batch", "--steps", "--baseline", "--rounds"];
  const arg = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  for (const [i, a] of Deno.args.entries()) {
    if (a.startsWith("--") && !OPTIONS.includes(a) && a !== "--kernels" && a !== "--child") {
      throw new Error(
        `train_bench: unknown option ${a}; the options: --batch 2,8,32,256, --steps N, ` +
          `--kernels, --baseline COMMIT, --rounds R`,
      );
    }
    if (OPTIONS.includes(a) && (Deno.args[i + 1] ?? "--").startsWith("--")) {
      throw new Error(`train_bench: ${a} needs a value`);
    }
  }
  const batches = (arg("--batch") ?? `${BATCH}`).split(",").map(Number);
  const bad = batches.find((b) => !Number.isInteger(b) || b < 2);
  if (bad !== undefined) {
    throw new Error(
      `train_bench: --batch takes batch sizes of 2 or more, comma-separated (BatchNorm needs ` +
        `two values per channel), got ${arg("--batch")}`,
    );
  }
  const steps = arg("--steps") === undefined ? undefined : Number(arg("--steps"));
  const kernelTables = Deno.args.includes("--kernels");
  if (Deno.args.includes("--child")) {
    const m = await oneBatch(batches[0], steps, kernelTables);
    console.log(`${ROW}${JSON.stringify(m)}`);
    Deno.exit(0);
  }
  const info = await adapterInfo();
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))
    .match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? Deno.build.arch;
  const load = () => Deno.loadavg()[0].toFixed(2);
  console.log(
    `adapter: ${info.description}; CPU: ${cpu}, ${navigator.hardwareConcurrency} cores; ` +
      `PyTorch: ${"python" in torch ? torch.python : torch.absent}; load average ${load()}`,
  );
  console.error(`timing bnlab, then PyTorch, per batch size:`);
  const measured = batches.length === 1
    ? [await oneBatch(batches[0], steps, kernelTables)]
    : await eachInItsOwnProcess(batches, steps, kernelTables);
  printTables(measured);
  const baseline = arg("--baseline");
  if (baseline) await compareWith(baseline, batches, steps, Number(arg("--rounds") ?? 3));
  console.log(`\nload average (1 min) at the end: ${load()}`);
}
