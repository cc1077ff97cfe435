/**
 * Training throughput of LeNet on WebGPU at batch 256, against PyTorch 1.13 on the CPU of
 * the same 2-core machine (REFERENCES.md: 7,256 examples/s with BN, 10,084 plain).
 *
 * `deno bench -A bench/train/train_bench.ts`: one full training step (zeroGrad, forward,
 * cross-entropy, backward, SGD) per iteration, four steps per timed sample and one host
 * wait, so the ~11 ms of a readback is spread as it is in `fit`.
 *
 * `deno run -A bench/train/train_bench.ts [--steps N]`: examples/s of both models, then
 * where a step's time goes: forward, loss + backward and SGD, and each layer's forward
 * and backward on its own, each phase timed between two host waits with the cost of an
 * empty wait subtracted.
 *
 * @module
 */
import { lenet } from "../../src/models/lenet.ts";
import { initXavier } from "../../src/train/fit.ts";
import { CrossEntropyLoss } from "../../src/nn/loss.ts";
import { SGD } from "../../src/optim/sgd.ts";
import type { Module } from "../../src/nn/module.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { flush, sync } from "../../src/gpu/queue.ts";
import { adapterInfo, getDevice } from "../../src/gpu/device.ts";

await getDevice();

const BATCH = 256;
const PEERS = { batch: 7256, none: 10084 } as const; // PyTorch 1.13 CPU, same machine
const LR = { batch: 1.0, none: 0.9 } as const;

function setup(norm: "batch" | "none") {
  const net = lenet({ norm });
  initXavier(net, 0);
  const sgd = new SGD(net.parameters(), { lr: LR[norm] });
  const lossFn = new CrossEntropyLoss();
  const x = Tensor.rand([BATCH, 1, 28, 28], { seed: 1 });
  const labels = new Float32Array(BATCH).map((_, i) => (i * 7) % 10);
  const y = Tensor.from(labels);
  const step = () => {
    tidy(() => {
      sgd.zeroGrad();
      const loss = lossFn.forward(net.forward(x), y);
      loss.backward();
      sgd.step();
    });
    flush();
  };
  return { net, sgd, lossFn, x, y, step };
}

for (const norm of ["batch", "none"] as const) {
  const s = setup(norm);
  s.step(); // compile the pipelines outside the timing
  await sync();
  Deno.bench({
    name: `${norm === "batch" ? "LeNet+BN" : "plain LeNet"} train step x4, batch ${BATCH}`,
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

/** Median seconds of `fn` between host waits over `reps` runs, less an empty wait's cost. */
async function timed(fn: () => void, reps: number, waitCost: number): Promise<number> {
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    await sync();
    const t0 = performance.now();
    fn();
    await sync();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return Math.max(0, ts[reps >> 1] - waitCost) / 1000;
}

async function emptyWait(reps = 20): Promise<number> {
  await sync();
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    Tensor.zeros([1]).dispose();
    await sync();
  }
  return (performance.now() - t0) / reps;
}

async function profile(norm: "batch" | "none", steps: number, waitCost: number): Promise<void> {
  const s = setup(norm);
  s.step();
  await sync();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) s.step();
  await sync();
  const perStep = (performance.now() - t0) / 1000 / steps;
  const name = norm === "batch" ? "LeNet+BN" : "plain LeNet";
  console.log(
    `\n${name}: ${(perStep * 1000).toFixed(1)} ms/step, ` +
      `${Math.round(BATCH / perStep).toLocaleString("en-US")} examples/s ` +
      `(PyTorch 1.13 CPU on this machine: ${PEERS[norm].toLocaleString("en-US")}; ` +
      `${(BATCH / perStep / PEERS[norm]).toFixed(2)}x)`,
  );

  // Phases of one step, each between host waits.
  const reps = 7;
  const fwd = await timed(() => tidy(() => s.net.forward(s.x)), reps, waitCost);
  const fwdLossBwd = await timed(
    () => tidy(() => s.lossFn.forward(s.net.forward(s.x), s.y).backward()),
    reps,
    waitCost,
  );
  const opt = await timed(() => tidy(() => s.sgd.step()), reps, waitCost);
  s.sgd.zeroGrad();
  const ms = (v: number) => `${(v * 1000).toFixed(1).padStart(7)} ms`;
  const share = (v: number) => `${Math.round((100 * v) / perStep).toString().padStart(3)}%`;
  const bwd = Math.max(0, fwdLossBwd - fwd);
  console.log(`  forward            ${ms(fwd)} ${share(fwd)} of a step`);
  console.log(`  loss + backward    ${ms(bwd)} ${share(bwd)}`);
  console.log(`  SGD step           ${ms(opt)} ${share(opt)}`);

  // Each layer alone: forward, then backward from a random upstream gradient.
  console.log("  per layer (forward / backward):");
  let act = s.x;
  for (const [key, layer] of (s.net as Module).namedChildren()) {
    const inp = act.detach();
    inp.requiresGrad = act !== s.x; // as in training: no gradient for the images
    const f = await timed(() => tidy(() => layer.forward(inp)), reps, waitCost);
    const out = tidy(() => noGrad(() => layer.forward(inp)));
    const g = Tensor.randn(out.shape, { seed: 2 });
    const fb = await timed(
      () =>
        tidy(() => {
          layer.forward(inp).backward(g);
          inp.grad?.dispose();
          inp.grad = null;
        }),
      reps,
      waitCost,
    );
    for (const p of layer.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
    console.log(
      `    ${key.padStart(2)} ${layer.constructor.name.padEnd(12)} ${ms(f)} / ${
        ms(Math.max(0, fb - f))
      }` +
        `   out [${out.shape.join(", ")}]`,
    );
    g.dispose();
    if (act !== s.x) act.dispose();
    inp.dispose();
    act = out;
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--steps");
  const steps = i >= 0 ? Number(Deno.args[i + 1]) : 20;
  const info = await adapterInfo();
  const waitCost = await emptyWait();
  console.log(
    `adapter: ${info.description}; one empty host wait: ${waitCost.toFixed(1)} ms ` +
      `(subtracted from each phase below)`,
  );
  for (const norm of ["batch", "none"] as const) await profile(norm, steps, waitCost);
}
