import { ok, throws } from "node:assert/strict";
/**
 * Memory: `tidy`, `dispose` and `using` return every buffer, and a repeated training-like
 * step reaches a steady state where the pool neither grows nor leaks.
 *
 * Every test here frees all it creates: a tensor left to the garbage collector would give
 * its buffer back at an unpredictable moment and move `liveBytes` under another test.
 */
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { keep, tidy } from "../../src/tensor/tidy.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { memoryStats } from "../../src/gpu/buffer_pool.ts";

/** Ops allocate a few permanent helpers on first use (e.g. the unary kernel's unused input). */
function warmUp(): void {
  tidy(() => {
    Tensor.zeros([1]).add(1);
  });
}

function assertLive(want: number, what: string): void {
  const got = memoryStats().liveBytes;
  ok(got === want, `${what}: liveBytes ${got}, expected ${want}`);
}

gpuTest("tidy frees the intermediates and keeps the result", async () => {
  warmUp();
  const start = memoryStats().liveBytes;
  const x = Tensor.from([1, 2, 3]);
  const withX = memoryStats().liveBytes;
  const y = tidy(() => x.mul(2).add(1).sqrt()); // two intermediates
  assertLive(withX + y.buffer.size, "after tidy, only the result is new");
  assertClose(await y.toArray(), [3, 5, 7].map(Math.sqrt), { atol: 1e-6, rtol: 1e-6 }, "y");
  const { a, b } = tidy(() => ({ a: x.add(1), b: [x.mul(3), x.neg().neg()] }));
  assertLive(withX + y.buffer.size + a.buffer.size + b[0].buffer.size + b[1].buffer.size, "kept");
  for (const t of [a, ...b, y, x]) t.dispose();
  assertLive(start, "after disposing everything");
});

gpuTest("nested tidy hands the inner result to the outer scope", () => {
  warmUp();
  const start = memoryStats().liveBytes;
  const x = Tensor.ones([5]);
  const out = tidy(() => {
    const inner = tidy(() => x.mul(2).add(3)); // survives the inner scope ...
    const keptForever = keep(x.add(0)); // ... keep() survives every scope
    ok(!inner.disposed && !keptForever.disposed, "inner result and kept tensor live");
    keptForever.dispose();
    return inner.mul(inner);
  });
  ok(!out.disposed, "outer result lives");
  out.dispose();
  x.dispose();
  assertLive(start, "after nested tidy");
});

gpuTest("dispose is idempotent, frees .grad, and a disposed tensor says so", () => {
  warmUp();
  const start = memoryStats().liveBytes;
  const x = Tensor.from([1, 2, 3], { shape: [3], requiresGrad: true });
  tidy(() => x.square().sum().backward());
  ok(x.grad !== null, "x has a gradient");
  x.dispose();
  x.dispose();
  ok(x.disposed && x.grad === null, "dispose frees the tensor and its gradient");
  throws(() => x.buffer, /This tensor \[3\] has been freed: it was disposed by dispose\(\)/);
  assertLive(start, "after dispose");
});

gpuTest("using disposes at the end of the block", () => {
  warmUp();
  const start = memoryStats().liveBytes;
  {
    using a = Tensor.zeros([257]);
    using b = a.add(1);
    ok(memoryStats().liveBytes === start + a.buffer.size + b.buffer.size, "two live");
  }
  assertLive(start, "after the block");
});

gpuTest("tidy rejects an async function", () => {
  throws(
    // deno-lint-ignore require-await
    () => tidy(async () => 1),
    /tidy\(\) takes a synchronous function/,
  );
});

gpuTest("memory is flat across 20 training-like steps", async () => {
  warmUp();
  const start = memoryStats();
  // A linear model y = sum_j x_j w_j + b fitted by SGD, written with elementwise ops.
  const X = Tensor.randn([16, 5], { seed: 1 });
  const trueW = Tensor.from([1, -2, 0.5, 3, -1], [5]);
  const Y = tidy(() => X.mul(trueW).sum(1, true).add(0.25));
  let w = Tensor.zeros([5], { requiresGrad: true });
  let b = Tensor.zeros([1], { requiresGrad: true });
  const step = (): Tensor => {
    const r = tidy(() => {
      const loss = X.mul(w).sum(1, true).add(b).sub(Y).square().mean();
      loss.backward();
      const [nw, nb] = noGrad(() => [w.sub(w.grad!.mul(0.1)), b.sub(b.grad!.mul(0.1))]);
      nw.requiresGrad = nb.requiresGrad = true;
      return { loss, nw, nb };
    });
    w.dispose(); // frees w.grad too: no zeroGrad needed
    b.dispose();
    [w, b] = [r.nw, r.nb];
    return r.loss;
  };
  const losses: number[] = [];
  let afterStep2 = memoryStats();
  for (let i = 1; i <= 20; i++) {
    const loss = step();
    losses.push(await loss.item());
    loss.dispose();
    if (i === 2) afterStep2 = memoryStats();
  }
  const afterStep20 = memoryStats();
  ok(
    afterStep20.buffers === afterStep2.buffers && afterStep20.liveBytes === afterStep2.liveBytes,
    `memory grew between step 2 and step 20: ${JSON.stringify(afterStep2)} -> ` +
      JSON.stringify(afterStep20),
  );
  ok(losses[19] < 0.5 * losses[0], `the step should learn: loss ${losses[0]} -> ${losses[19]}`);
  for (const t of [X, trueW, Y, w, b]) t.dispose();
  assertLive(start.liveBytes, "after the loop");
});
