// The GPU's counter-based generator against its float64 reference: uniforms bit for bit,
// normals to the adapter's transcendental precision; seeds, shapes and moments.
import { deepEqual, equal, notDeepEqual, ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { manualSeed } from "../../src/tensor/random.ts";
import { refNormal, refPcg, refUniform } from "../../src/ops/random/reference.ts";

gpuTest("Tensor.rand equals the reference bit for bit, on odd sizes (#8.6)", async () => {
  for (const [n, seed] of [[1, 0], [7, 1], [513, 42], [100_003, 2 ** 32 - 1]]) {
    const got = await Tensor.rand([n], { seed }).toArray();
    assertClose(got, refUniform(n, seed), { atol: 0, rtol: 0 }, `n ${n} seed ${seed}`);
  }
  // low + (high - low) u in float32: within an ulp of the largest term (2.4e-7 near 2 or 3).
  const ranged = await Tensor.rand([3, 5, 7], { seed: 9, low: -2, high: 3 }).toArray();
  assertClose(ranged, refUniform(105, 9, -2, 3), { atol: 2.4e-7, rtol: 0 }, "[-2, 3)");
  ok(ranged.every((v) => v >= -2 && v < 3));
});

gpuTest(
  "Tensor.randn equals the float64 Box-Muller reference to float32 precision (#8.6)",
  async () => {
    for (const [n, seed] of [[1, 0], [2, 3], [307, 5], [200_001, 11]]) {
      const got = await Tensor.randn([n], { seed }).toArray();
      // r = sqrt(-2 ln(1 - u)) is at most 5.8: float32 precision is about 1e-6 in absolute terms.
      assertClose(got, refNormal(n, seed), { atol: 2e-6, rtol: 1e-6 }, `n ${n} seed ${seed}`);
    }
  },
);

gpuTest("randn's moments and tails are a standard normal's", async () => {
  const z = await Tensor.randn([256, 6, 24, 24], { seed: 1 }).toArray();
  const n = z.length;
  const mean = z.reduce((a, b) => a + b, 0) / n;
  const variance = z.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  ok(Math.abs(mean) < 4 / Math.sqrt(n), `mean ${mean}`);
  ok(Math.abs(variance - 1) < 0.01, `variance ${variance}`);
  const beyond2 = z.filter((v) => Math.abs(v) > 2).length / n; // 4.55% for a normal
  ok(Math.abs(beyond2 - 0.0455) < 0.002, `P(|z| > 2) = ${beyond2}`);
});

gpuTest(
  "seeds: the same seed repeats, another differs, the global generator is seeded",
  async () => {
    const a = await Tensor.randn([64], { seed: 5 }).toArray();
    deepEqual(await Tensor.randn([64], { seed: 5 }).toArray(), a);
    notDeepEqual(await Tensor.randn([64], { seed: 6 }).toArray(), a);
    manualSeed(123);
    const g1 = await Tensor.rand([16]).toArray();
    const g2 = await Tensor.rand([16]).toArray();
    manualSeed(123);
    deepEqual(await Tensor.rand([16]).toArray(), g1, "manualSeed restarts the sequence");
    notDeepEqual(g1, g2, "successive calls differ");
    equal((await Tensor.randn([0]).toArray()).length, 0);
    throws(() => Tensor.rand([2], { low: 1, high: 0 }), /finite low <= high, got low 1, high 0/);
  },
);

Deno.test("the reference hash is PCG's output permutation on 32 bits", () => {
  // Values worked by hand from the formula with 64-bit integers, then reduced mod 2^32.
  const ref = (v: bigint) => {
    const m = 2n ** 32n;
    const state = (v * 747796405n + 2891336453n) % m;
    const word = (((state >> ((state >> 28n) + 4n)) ^ state) * 277803737n) % m;
    return Number((word >> 22n) ^ word);
  };
  for (const v of [0, 1, 12345, 2 ** 31, 2 ** 32 - 1]) {
    equal(refPcg(v), ref(BigInt(v)), `refPcg(${v})`);
  }
});
