/**
 * Training throughput of LeNet on WebGPU at batch 256, against PyTorch 1.13 on the CPU of
 * the same 2-core machine (REFERENCES.md: 7,256 examples/s with BN, 10,084 plain).
 *
 * `deno bench -A bench/train/train_bench.ts`: one full training step (zeroGrad, forward,
 * cross-entropy, backward, SGD) per iteration, four steps per timed sample and one host
 * wait, so the ~11 ms of a readback is spread as it is in `fit`.
 *
 * `deno run -A bench/train/train_bench.ts [--steps N] [--baseline COMMIT [--rounds R]]`:
 * examples/s of both models, then where a step's time goes: forward, loss + backward and
 * SGD, the JS thread's encoding of a step, and each layer's forward and backward on its
 * own, each phase timed by `msPerCall` (several runs between two host waits, less an
 * empty wait). With `--baseline`, the same steps are then timed on COMMIT too: it is
 * checked out in a temporary `git worktree`, and `steps.ts` runs there and here in turn, R
 * rounds (default 3) alternating which goes first, so that both trees share the machine's
 * load; it prints both and the speedup per round (median, min-max), then removes the
 * worktree.
 *
 * @module
 */
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { flush, queueStats, sync } from "../../src/gpu/queue.ts";
import { adapterInfo, getDevice } from "../../src/gpu/device.ts";
import { BATCH, setup } from "./steps.ts";
import { msPerCall } from "../timing.ts";

await getDevice();

const PEERS = { batch: 7256, none: 10084 } as const; // PyTorch 1.13 CPU, same machine
type Norm = "batch" | "none";
const NAME: Record<Norm, string> = { batch: "LeNet+BN", none: "plain LeNet" };

for (const norm of ["batch", "none"] as const) {
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

/**
 * Seconds per run of `fn`: bench/timing.ts's `msPerCall`, 7 runs between two host waits
 * less an empty wait, best of 3 trials (the first compiles the pipelines). One wait per run
 * would put its jitter (a few ms on llvmpipe) on passes of 1 ms.
 */
async function timed(fn: () => void): Promise<number> {
  return Math.max(0, await msPerCall(fn, { reps: 7, trials: 3 })) / 1000;
}

async function profile(norm: "batch" | "none", steps: number): Promise<void> {
  const s = setup(norm);
  s.step();
  await sync();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) s.step();
  await sync();
  const perStep = (performance.now() - t0) / 1000 / steps;
  const name = NAME[norm];
  console.log(
    `\n${name}: ${(perStep * 1000).toFixed(1)} ms/step, ` +
      `${Math.round(BATCH / perStep).toLocaleString("en-US")} examples/s ` +
      `(PyTorch 1.13 CPU on this machine: ${PEERS[norm].toLocaleString("en-US")}; ` +
      `${(BATCH / perStep / PEERS[norm]).toFixed(2)}x)`,
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
  const ms = (v: number) => `${(v * 1000).toFixed(1).padStart(7)} ms`;
  const share = (v: number) => `${Math.round((100 * v) / perStep).toString().padStart(3)}%`;
  const bwd = Math.max(0, fwdLossBwd - fwd);
  console.log(`  forward            ${ms(fwd)} ${share(fwd)} of a step`);
  console.log(`  loss + backward    ${ms(bwd)} ${share(bwd)}`);
  console.log(`  SGD step           ${ms(opt)} ${share(opt)}`);
  const alone = Math.round(BATCH / encode).toLocaleString("en-US");
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

async function command(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(r.stderr)}`);
  }
  return new TextDecoder().decode(r.stdout);
}

/** ms/step of both models from one run of steps.ts (`script`) in the tree at `cwd`. */
async function stepsIn(cwd: string, script: string, steps: number): Promise<Record<Norm, number>> {
  const out = await command(Deno.execPath(), ["run", "-A", script, "--steps", `${steps}`], cwd);
  const ms = {} as Record<Norm, number>;
  for (const line of out.split("\n").filter((l) => l.startsWith("{"))) {
    const { model, msPerStep } = JSON.parse(line);
    ms[model as Norm] = msPerStep;
  }
  return ms;
}

/** Times both models here and at `commit` (a temporary worktree), alternately, `rounds` times. */
async function compareWith(commit: string, steps: number, rounds: number): Promise<void> {
  const root = (await command("git", ["rev-parse", "--show-toplevel"], Deno.cwd())).trim();
  const here = (await command("git", ["rev-parse", "--short", "HEAD"], root)).trim();
  const dir = await Deno.makeTempDir({ prefix: "bnlab-baseline-" });
  await command("git", ["worktree", "add", "--detach", dir, commit], root);
  try {
    // The same measuring code in both trees: this steps.ts, copied beside the old sources.
    const copy = "bench/train/steps_of_current_tree.ts";
    await Deno.copyFile(new URL("./steps.ts", import.meta.url), `${dir}/${copy}`);
    const trees = {
      baseline: { cwd: dir, script: copy },
      current: { cwd: root, script: "bench/train/steps.ts" },
    };
    const ms = { baseline: { batch: [], none: [] }, current: { batch: [], none: [] } } as Record<
      keyof typeof trees,
      Record<Norm, number[]>
    >;
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0
        ? ["baseline", "current"] as const
        : ["current", "baseline"] as const;
      for (const tree of order) {
        const got = await stepsIn(trees[tree].cwd, trees[tree].script, steps);
        for (const norm of ["batch", "none"] as const) ms[tree][norm].push(got[norm]);
      }
    }
    const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
    const range = (a: number[], d = 1) =>
      `${median(a).toFixed(d)} (${Math.min(...a).toFixed(d)}-${Math.max(...a).toFixed(d)})`;
    console.log(
      `\nbaseline ${commit} vs this tree (${here} and any uncommitted changes), ${rounds} ` +
        `rounds of ${steps} steps, alternating; ms/step median (min-max):`,
    );
    for (const norm of ["batch", "none"] as const) {
      const speedup = ms.baseline[norm].map((b, i) => b / ms.current[norm][i]);
      console.log(
        `  ${NAME[norm].padEnd(12)} baseline ${range(ms.baseline[norm])} | this tree ` +
          `${range(ms.current[norm])} | ${range(speedup, 2)}x faster`,
      );
    }
  } finally {
    await command("git", ["worktree", "remove", "--force", dir], root);
  }
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const steps = Number(arg("--steps") ?? 20);
  const info = await adapterInfo();
  console.log(`adapter: ${info.description}`);
  for (const norm of ["batch", "none"] as const) await profile(norm, steps);
  const baseline = arg("--baseline");
  if (baseline) await compareWith(baseline, steps, Number(arg("--rounds") ?? 3));
}
