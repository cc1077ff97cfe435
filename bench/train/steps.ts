/**
 * Milliseconds per LeNet training step at batch 256, as `fit` runs them (zeroGrad,
 * forward, cross-entropy, backward, SGD; one host wait at the end of the run), for both
 * models. `train_bench.ts --baseline <commit>` copies this file into a checkout of that
 * commit and runs it there and here, alternately, so both trees are measured by the same
 * code in the same minutes. It imports only APIs that have not changed since `bf383dc`.
 *
 * Run: `deno run -A bench/train/steps.ts [--steps N] [--models batch,none]`; prints one JSON
 * line per model: `{"model":"batch","msPerStep":123.4}`.
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

/** Batch size of every step. */
export const BATCH = 256;
/** The lecture's learning rates: 1.0 with batch norm, 0.9 without. */
export const LR = { batch: 1.0, none: 0.9 } as const;

/**
 * A LeNet (`norm`), its optimizer and loss, and one fixed batch; `step()` encodes one step
 * and submits it, `encode()` only encodes it.
 */
export function setup(norm: "batch" | "none") {
  const net = lenet({ norm });
  initXavier(net, 0);
  const sgd = new SGD(net.parameters(), { lr: LR[norm] });
  const lossFn = new CrossEntropyLoss();
  const x = Tensor.rand([BATCH, 1, 28, 28], { seed: 1 });
  const labels = new Float32Array(BATCH).map((_, i) => (i * 7) % 10);
  const y = Tensor.from(labels);
  /** Encodes one step without submitting it. */
  const encode = () =>
    tidy(() => {
      sgd.zeroGrad();
      const loss = lossFn.forward(net.forward(x), y);
      loss.backward();
      sgd.step();
    });
  const step = () => {
    encode();
    flush();
  };
  return { net, sgd, lossFn, x, y, encode, step };
}

/** Milliseconds per step over `steps` steps and one final wait, after one warm-up step. */
export async function msPerStep(norm: "batch" | "none", steps: number): Promise<number> {
  const s = setup(norm);
  s.step(); // compile the pipelines outside the timing
  await sync();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) s.step();
  await sync();
  return (performance.now() - t0) / steps;
}

if (import.meta.main) {
  await getDevice();
  const arg = (name: string, fallback: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : fallback;
  };
  const steps = Number(arg("--steps", "20"));
  for (const model of arg("--models", "batch,none").split(",") as ("batch" | "none")[]) {
    console.log(JSON.stringify({ model, msPerStep: await msPerStep(model, steps) }));
  }
}
