/**
 * Random tensors: the GPU's counter-based generator (`Tensor.randn`/`rand`) against the
 * host generator plus one upload (what `Tensor.randn` did before, and what noise
 * injection per step would cost with it), on LeNet's largest activation, [256, 6, 24, 24].
 * Each version is checked against the float64 reference before it is timed.
 *
 *     deno bench -A bench/tensor/random_bench.ts
 *
 * @module
 */
import { Tensor } from "../../src/tensor/tensor.ts";
import { Rng } from "../../src/tensor/random.ts";
import { getDevice } from "../../src/gpu/device.ts";
import { sync } from "../../src/gpu/queue.ts";
import { refNormal } from "../../src/ops/random/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";

await getDevice();
const SHAPE = [256, 6, 24, 24];
const N = SHAPE.reduce((a, b) => a * b);

/** The host path: a float64 generator on the CPU, then one upload. */
function hostRandn(seed: number): Tensor {
  const rng = new Rng(seed);
  const a = new Float32Array(N);
  for (let i = 0; i < N; i++) a[i] = rng.normal();
  return Tensor.from(a, SHAPE);
}

// Validate before timing: the GPU's normals against the float64 reference.
{
  using z = Tensor.randn(SHAPE, { seed: 3 });
  assertClose(await z.toArray(), refNormal(N, 3), { atol: 2e-6, rtol: 1e-6 }, "randn");
  using h = hostRandn(3);
  const v = await h.toArray();
  const mean = v.reduce((a, b) => a + b, 0) / N;
  if (Math.abs(mean) > 0.01) throw new Error(`host randn mean ${mean}`);
}

Deno.bench({
  name: "host Rng + upload",
  group: "randn [256, 6, 24, 24]",
  baseline: true,
  async fn() {
    hostRandn(1).dispose();
    await sync();
  },
});

Deno.bench({
  name: "GPU counter-based (Tensor.randn)",
  group: "randn [256, 6, 24, 24]",
  async fn() {
    Tensor.randn(SHAPE, { seed: 1 }).dispose();
    await sync();
  },
});

Deno.bench({
  name: "GPU counter-based (Tensor.rand)",
  group: "randn [256, 6, 24, 24]",
  async fn() {
    Tensor.rand(SHAPE, { seed: 1 }).dispose();
    await sync();
  },
});
