import { ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { fans, ones, xavierUniform, zeros } from "../../src/nn/init.ts";
import fixture from "../fixtures/linear_loss.json" with { type: "json" };

const fx = fixture.xavier;

for (const f of fx) {
  gpuTest(`xavierUniform: PyTorch's fans and bound for ${JSON.stringify(f.shape)}`, async () => {
    const { fanIn, fanOut } = fans(f.shape);
    ok(fanIn === f.fan_in && fanOut === f.fan_out, `fans ${fanIn}, ${fanOut}`);
    for (const gain of [1, 2]) {
      const w = await xavierUniform(Tensor.zeros(f.shape), { gain, seed: 4 }).toArray();
      const maxAbs = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const bound = gain * f.bound;
      ok(maxAbs <= bound, `max |w| ${maxAbs} > bound ${bound}`);
      // like torch's draw (max_abs), ours reaches near the bound; torch's stays inside too
      ok(maxAbs > 0.9 * bound && f.max_abs <= f.bound, `max |w| ${maxAbs} vs ${bound}`);
      const mean = w.reduce((s, v) => s + v, 0) / w.length;
      ok(Math.abs(mean) < 4 * bound / Math.sqrt(3 * w.length), `mean ${mean}`);
    }
  });
}

gpuTest("xavierUniform is seeded, in place, and rejects 1-D tensors", async () => {
  const t = Tensor.zeros([6, 4]);
  const buffer = t.buffer;
  xavierUniform(t, { seed: 9 });
  ok(t.buffer === buffer, "same buffer");
  const again = await xavierUniform(Tensor.zeros([6, 4]), { seed: 9 }).toArray();
  assertClose(await t.toArray(), again, { atol: 0, rtol: 0 }, "same seed");
  throws(() => xavierUniform(Tensor.zeros([5])), /at least 2 dimensions, got \[5\]/);
});

gpuTest("zeros and ones fill in place, ordered after earlier GPU work", async () => {
  const t = Tensor.randn([7, 7], { seed: 1 });
  const y = t.mul(2); // encoded before the fill: must see the old values
  zeros(t);
  assertClose(await t.toArray(), new Float32Array(49), { atol: 0, rtol: 0 }, "zeros");
  ok((await y.toArray()).some((v) => v !== 0), "earlier work saw the old values");
  ones(t);
  assertClose(await t.toArray(), new Float32Array(49).fill(1), { atol: 0, rtol: 0 }, "ones");
});
