import { ok, rejects, throws } from "node:assert/strict";
/** Tensor factories, host round trips, and their errors. */
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

gpuTest("from: nested arrays, flat data with a shape, scalars; values round-trip", async () => {
  const a = Tensor.from([[1, 2, 3], [4, 5, 6]]);
  ok(a.shape.join() === "2,3" && a.numel === 6 && a.rank === 2, `shape [${a.shape}]`);
  assertClose(await a.toArray(), [1, 2, 3, 4, 5, 6], { atol: 0, rtol: 0 }, "nested");
  const b = Tensor.from(new Float32Array([0.1, -2.5, 3e-8, 7]), [2, 1, 2]);
  assertClose(await b.toArray(), Float32Array.of(0.1, -2.5, 3e-8, 7), { atol: 0, rtol: 0 }, "flat");
  const s = Tensor.from(4.5);
  ok(s.rank === 0 && (await s.item()) === 4.5, "a number gives a 0-d tensor");
  const e = Tensor.from([], [0, 3]);
  ok(e.numel === 0 && (await e.toArray()).length === 0, "an empty tensor reads back empty");
  for (const t of [a, b, s, e]) t.dispose();
});

gpuTest("from and item reject what does not fit, naming the sizes", async () => {
  throws(() => Tensor.from([1, 2, 3], [2, 2]), /3 values do not fill shape \[2, 2\]/);
  throws(
    () => Tensor.zeros([2, -1]),
    /shape must be a list of non-negative integers, got \[2,-1\]/,
  );
  const t = Tensor.zeros([2]);
  await rejects(() => t.item(), /item\(\) needs a one-element tensor, got shape \[2\]/);
  t.dispose();
});

gpuTest("zeros, ones, full fill every element, odd sizes included", async () => {
  for (const shape of [[1], [7, 7], [3, 1, 7, 513]]) {
    const n = shape.reduce((p, d) => p * d, 1);
    const z = Tensor.zeros(shape), o = Tensor.ones(shape), f = Tensor.full(shape, -2.75);
    assertClose(await z.toArray(), new Float32Array(n), { atol: 0, rtol: 0 }, "zeros");
    assertClose(await o.toArray(), new Float32Array(n).fill(1), { atol: 0, rtol: 0 }, "ones");
    assertClose(await f.toArray(), new Float32Array(n).fill(-2.75), { atol: 0, rtol: 0 }, "full");
    for (const t of [z, o, f]) t.dispose();
  }
  const g = Tensor.ones([3], { requiresGrad: true });
  ok(g.requiresGrad, "factories honour requiresGrad");
  g.dispose();
});
