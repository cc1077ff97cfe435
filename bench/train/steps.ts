/**
 * Milliseconds per LeNet training step, as `fit` runs them (zeroGrad, forward, cross-entropy,
 * backward, SGD, each step in a `tidy` and submitted as it is encoded), on one fixed batch:
 * {@link WARMUP} steps, then {@link stepsFor} steps timed up to one read of the last loss.
 * `train_bench.ts --baseline <commit>` copies this file into a checkout of that commit and
 * runs it there and here, alternately, so both trees are measured by the same code in the
 * same minutes. It imports only APIs that have not changed since `bf383dc`, and none added
 * after `0d6f957`.
 *
 * Run: `deno run -A bench/train/steps.ts [--batch 2,8,32,256] [--steps N] [--models batch,none]`;
 * prints one JSON line per batch size and model: `{"model":"batch","batch":2,"msPerStep":4.5}`.
 * `bench/peers/torch_steps.py` is the same loop in PyTorch, with the same options and lines.
 *
 * @module
 */
import { lenet } from "../../src/models/lenet.ts";
import { initXavier } from "../../src/train/fit.ts";
import { CrossEntropyLoss } from "../../src/nn/loss.ts";
import { SGD } from "../../src/optim/sgd.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { flush, sync } from "../../src/gpu/queue.ts";
import { getDevice } from "../../src/gpu/device.ts";

/** Batch size when none is given: the lecture's. */
export const BATCH = 256;
/** The lecture's learning rates: 1.0 with batch norm, 0.9 without. */
export const LR = { batch: 1.0, none: 0.9 } as const;
/** Untimed steps before the timed ones: they compile the pipelines and fill the pools. */
export const WARMUP = 5;

/**
 * Timed steps per run at `batch`: 200, or 50 from batch 32 on, where a step is long enough
 * that the one read at the end (~11 ms on llvmpipe) is a small part of the run.
 */
export function stepsFor(batch: number): number {
  return batch >= 32 ? 50 : 200;
}

/**
 * A LeNet (`norm`), its optimizer and loss, and one fixed batch of `batch` uniform images
 * with labels `(7 i) mod 10`; `step()` encodes one step and submits it, `encode()` only
 * encodes it, `read()` reads back the last step's loss (one host wait).
 */
export function setup(norm: "batch" | "none", batch = BATCH) {
  const net = lenet({ norm });
  initXavier(net, 0);
  const sgd = new SGD(net.parameters(), { lr: LR[norm] });
  const lossFn = new CrossEntropyLoss();
  const x = Tensor.rand([batch, 1, 28, 28], { seed: 1 });
  const labels = new Float32Array(batch).map((_, i) => (i * 7) % 10);
  const y = Tensor.from(labels);
  let last: Tensor | undefined;
  /** Encodes one step without submitting it. */
  const encode = () => {
    const loss = tidy(() => {
      sgd.zeroGrad();
      const loss = lossFn.forward(net.forward(x), y);
      loss.backward();
      sgd.step();
      return loss;
    });
    last?.dispose();
    last = loss;
  };
  const step = () => {
    encode();
    flush();
  };
  const read = async () => last ? (await last.toArray())[0] : NaN;
  return { net, sgd, lossFn, x, y, encode, step, read };
}

/**
 * Milliseconds per step at `batch`: {@link WARMUP} steps and a wait, then `steps` steps and
 * one read of the last loss, timed together.
 */
export async function msPerStep(
  norm: "batch" | "none",
  steps: number,
  batch = BATCH,
): Promise<number> {
  const s = setup(norm, batch);
  for (let i = 0; i < WARMUP; i++) s.step();
  await sync();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) s.step();
  await s.read();
  return (performance.now() - t0) / steps;
}

if (import.meta.main) {
  await getDevice();
  const arg = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const batches = (arg("--batch") ?? `${BATCH}`).split(",").map(Number);
  const steps = arg("--steps");
  for (const batch of batches) {
    for (const model of (arg("--models") ?? "batch,none").split(",") as ("batch" | "none")[]) {
      const ms = await msPerStep(model, steps ? Number(steps) : stepsFor(batch), batch);
      console.log(JSON.stringify({ model, batch, msPerStep: ms }));
    }
  }
}
