import { ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { dropout } from "../../src/ops/dropout/dropout.ts";

for (const [n, p] of [[1, 0.5], [7, 0.1], [513, 0.5], [100_003, 0.3], [100_003, 0.9]] as const) {
  gpuTest(`dropout p=${p} on ${n} elements: mask, scale, keep rate, backward`, async () => {
    const xs = Float32Array.from({ length: n }, (_, i) => 1 + (i % 5));
    const x = Tensor.from(xs, { shape: [n], requiresGrad: true });
    const y = dropout(x, p, { seed: 42, counter: 3 });
    const dy = Float32Array.from({ length: n }, (_, i) => (i % 3) - 1);
    y.backward(Tensor.from(dy));
    const out = await y.toArray();
    const grad = await x.grad!.toArray();
    const scale = 1 / (1 - p);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const k = out[i] !== 0;
      kept += k ? 1 : 0;
      // out = x * mask and dinp = dout * mask with the same mask in {0, 1/(1-p)}
      const mask = k ? scale : 0;
      assertClose([out[i], grad[i]], [xs[i] * mask, dy[i] * mask], { atol: 1e-6 }, `element ${i}`);
    }
    if (n > 1000) {
      // binomial: |kept/n - (1-p)| within 5 standard deviations
      const sd = Math.sqrt(p * (1 - p) / n);
      ok(Math.abs(kept / n - (1 - p)) < 5 * sd, `keep rate ${kept / n} vs ${1 - p}`);
    }
    const again = await dropout(x, p, { seed: 42, counter: 3 }).toArray();
    assertClose(again, out, { atol: 0, rtol: 0 }, "same seed and counter, same mask");
  });
}

gpuTest("dropout: counters give independent masks; p = 0 and p = 1", async () => {
  const x = Tensor.ones([4096]);
  const a = await dropout(x, 0.5, { seed: 1, counter: 0 }).toArray();
  const b = await dropout(x, 0.5, { seed: 1, counter: 1 }).toArray();
  let agree = 0;
  for (let i = 0; i < a.length; i++) agree += (a[i] !== 0) === (b[i] !== 0) ? 1 : 0;
  ok(Math.abs(agree / a.length - 0.5) < 5 * Math.sqrt(0.25 / a.length), `agree ${agree}`);
  assertClose(await dropout(x, 0).toArray(), new Float32Array(4096).fill(1), {}, "p = 0");
  assertClose(await dropout(x, 1).toArray(), new Float32Array(4096), {}, "p = 1");
  let msg = "";
  try {
    dropout(x, 1.5);
  } catch (e) {
    msg = (e as Error).message;
  }
  ok(msg.includes("1.5"), msg);
});
