// The watch that lets an interrupted fit answer at once (issue 25, point 4): it sees a run
// killed mid-step (marked running at a timer) or killed as it resumed from a GPU wait (the
// GPU idle, the wait never returning), and does not mistake a live run for a killed one.
import { deepEqual, equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { interruptedCall, InterruptWatch } from "../../src/train/interrupt_watch.ts";
import { fit, FitInterruptedError } from "../../src/train/fit.ts";
import { lenet } from "../../src/models/lenet.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

gpuTest("a run left marked as running at a timer is seen killed", async () => {
  let killed = 0;
  const t0 = performance.now();
  const watch = new InterruptWatch(() => killed++, true); // never waits: as if killed mid-step
  while (!killed && performance.now() - t0 < 3000) await sleep(50);
  watch.stop();
  equal(killed, 1);
  ok(performance.now() - t0 < 1000, `seen after ${performance.now() - t0} ms`);
});

gpuTest(
  "a GPU wait whose continuation never runs is seen killed once the GPU is idle",
  async () => {
    let killed = 0;
    const watch = new InterruptWatch(() => killed++, true);
    void watch.wait(new Promise(() => {}), true); // the result that never arrives
    const t0 = performance.now();
    while (!killed && performance.now() - t0 < 5000) await sleep(50);
    watch.stop();
    equal(killed, 1);
    ok(performance.now() - t0 < 2500, `seen after ${performance.now() - t0} ms`);
  },
);

gpuTest("live runs are not killed: long GPU reads, and waits on other things", async () => {
  let killed = 0;
  const watch = new InterruptWatch(() => killed++, true);
  const x = Tensor.rand([512, 512], { seed: 1 });
  for (let i = 0; i < 4; i++) {
    let y = x;
    for (let k = 0; k < 40; k++) y = y.mul(1.0001).add(0.5).sqrt(); // a few hundred ms of GPU
    await watch.wait(y.sum().item(), true);
    await watch.wait(sleep(600), false); // a callback that takes its time
  }
  watch.stop();
  equal(killed, 0);
});

const CONVERSION =
  "Failed to execute 'call' on 'GPUQueue': Argument 0 can not be converted to a sequence";

Deno.test("interruptedCall knows the TypeError an interrupted WebGPU call throws", () => {
  ok(interruptedCall(new TypeError(CONVERSION)));
  ok(interruptedCall(new TypeError(CONVERSION.replace("a sequence", "a dictionary"))));
  ok(!interruptedCall(new Error(CONVERSION)), "only a TypeError");
  ok(
    !interruptedCall(new TypeError("Failed to execute 'call' on 'GPUQueue': 1 argument required")),
  );
  ok(
    !interruptedCall(
      new TypeError("Failed to execute 'fetch' on 'Window': can not be converted to"),
    ),
  );
  ok(!interruptedCall("Failed to execute"));
});

/**
 * Runs a 6-step fit whose 4th submit throws `error` (as an interrupted call), in a kernel or
 * not (in one, fit first submits what was encoded before it: the 4th is step 3's).
 */
async function fitWithFailingSubmit(error: Error, inKernel: boolean): Promise<unknown> {
  const x = Tensor.rand([4, 1, 28, 28], { seed: 2 });
  const y = Tensor.from([0, 1, 2, 3]);
  const loader = { length: 6, batches: () => Array.from({ length: 6 }, () => ({ x, y })) };
  const real = GPUQueue.prototype.submit;
  const deno = Deno as unknown as { jupyter: unknown };
  let submits = 0;
  GPUQueue.prototype.submit = function (this: GPUQueue, ...a: [GPUCommandBuffer[]]) {
    if (++submits === 4) throw error;
    return real.apply(this, a);
  };
  if (inKernel) deno.jupyter = {}; // what jupyter() looks for: fit then watches
  try {
    return await fit(lenet(), loader, loader, { epochs: 1, lr: 0.1, updatesPerEpoch: 1 })
      .then(() => "resolved", (e) => e);
  } finally {
    GPUQueue.prototype.submit = real;
    deno.jupyter = undefined; // Deno.jupyter throws again, as outside a kernel
    x.dispose();
    y.dispose();
  }
}

gpuTest(
  "in a kernel, an interrupt that surfaces as a WebGPU TypeError ends fit as one",
  async () => {
    const cause = new TypeError(CONVERSION);
    const e = await fitWithFailingSubmit(cause, true);
    ok(e instanceof FitInterruptedError, `got ${e}`);
    equal(e.cause, cause);
    deepEqual(e.history.stopped, { reason: "interrupted", epoch: 1, step: 2 });
    // outside a kernel nothing interrupts a run: the same error is the error
    equal(await fitWithFailingSubmit(cause, false), cause);
    // and in one, another error is not an interrupt
    const other = new TypeError("submit failed (test)");
    equal(await fitWithFailingSubmit(other, true), other);
  },
);

gpuTest("an interrupted step is undone: the weights are those after history.stopped", async () => {
  const x = Tensor.rand([4, 1, 28, 28], { seed: 3 });
  const y = Tensor.from([0, 1, 2, 3]);
  const steps = (n: number) => ({
    length: n,
    batches: () => Array.from({ length: n }, () => ({ x, y })),
  });
  const opts = { epochs: 1, lr: 0.5, updatesPerEpoch: 1, init: "xavier" as const, seed: 7 };
  const weights = async (net: ReturnType<typeof lenet>) =>
    await Promise.all(net.parameters().map(async (p) => [...await p.toArray()]));
  const ref = lenet();
  await fit(ref, steps(2), steps(2), opts);
  // Step 3's optimizer update is encoded when onStep throws the interrupt's TypeError.
  const net = lenet();
  const deno = Deno as unknown as { jupyter: unknown };
  deno.jupyter = {};
  let e: unknown;
  try {
    e = await fit(net, steps(6), steps(6), {
      ...opts,
      onStep: (s) => {
        if (s.step === 3) throw new TypeError(CONVERSION);
      },
    }).then(() => "resolved", (err) => err);
  } finally {
    deno.jupyter = undefined;
  }
  ok(e instanceof FitInterruptedError, `got ${e}`);
  deepEqual(e.history.stopped, { reason: "interrupted", epoch: 1, step: 2 });
  deepEqual(await weights(net), await weights(ref)); // bit for bit: step 3 never ran
  x.dispose();
  y.dispose();
});
