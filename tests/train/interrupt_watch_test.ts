// The watch that lets an interrupted fit answer at once (issue 25, point 4): it sees a run
// killed mid-step (marked running at a timer) or killed as it resumed from a GPU wait (the
// GPU idle, the wait never returning), and does not mistake a live run for a killed one.
import { equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { InterruptWatch } from "../../src/train/interrupt_watch.ts";
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
