import { ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { memoryStats } from "../../src/gpu/buffer_pool.ts";
import {
  layerNorm,
  type LayerNormLayout,
  layerNormLayout,
} from "../../src/ops/layer_norm/layer_norm.ts";
import { refLayerNormBackward, refLayerNormForward } from "../../src/ops/layer_norm/reference.ts";
import { Rng } from "../../src/tensor/random.ts";
import fixture from "../fixtures/layer_norm.json" with { type: "json" };
import { centralDiff } from "../central_diff.ts";

/** Normal samples rounded to float32, so the GPU and the float64 reference see the same values. */
function randArray(n: number, rng: Rng, mean = 0, std = 1): Float64Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = mean + std * rng.normal();
  return Float64Array.from(a);
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

Deno.test("layer norm reference backward matches central differences", () => {
  const [M, D] = [3, 5];
  const rng = new Rng(1);
  const inp = randArray(M * D, rng), dout = randArray(M * D, rng);
  for (const affine of [true, false]) {
    const weight = affine ? randArray(D, rng, 1, 0.5) : null;
    const bias = affine ? randArray(D, rng) : null;
    // L = sum(out * dout), so dL/dx is the backward's gradient.
    const loss = () => {
      const { out } = refLayerNormForward(inp, weight, bias, M, D, 1e-5);
      return out.reduce((s, v, i) => s + v * dout[i], 0);
    };
    const { mean, rstd } = refLayerNormForward(inp, weight, bias, M, D, 1e-5);
    const g = refLayerNormBackward(dout, inp, mean, rstd, weight, M, D);
    const h = 1e-6;
    const checks: [Float64Array, Float64Array, string][] = [[inp, g.dinp, "dinp"]];
    if (weight && bias) checks.push([weight, g.dweight, "dweight"], [bias, g.dbias, "dbias"]);
    for (const [x, dx, what] of checks) {
      const num = centralDiff(x, loss, h);
      assertClose(dx, num, { atol: 1e-7, rtol: 1e-6 }, `${what} vs central differences`);
    }
  }
});

type Affine = "both" | "none" | "weight" | "bias";

/**
 * Runs layerNorm forward and backward (upstream gradient `dout`) on the GPU and in the
 * float64 reference, and compares out, dinp, dweight and dbias.
 */
async function compare(
  shape: number[],
  norm: number[],
  affine: Affine,
  { seed = 0, mean = 0, std = 1, eps = 1e-5, outTol = {}, gradTol = {}, sumTol = {} } = {},
  layout?: LayerNormLayout,
): Promise<void> {
  const D = prod(norm), M = prod(shape) / D;
  const rng = new Rng(seed);
  const inp = randArray(M * D, rng, mean, std);
  const dout = randArray(M * D, rng);
  const weight = affine === "both" || affine === "weight" ? randArray(D, rng, 1, 0.5) : null;
  const bias = affine === "both" || affine === "bias" ? randArray(D, rng) : null;

  const x = Tensor.from(inp, { shape: shape, requiresGrad: true });
  const w = weight ? Tensor.from(weight, { shape: norm, requiresGrad: true }) : null;
  const b = bias ? Tensor.from(bias, { shape: norm, requiresGrad: true }) : null;
  const y = layerNorm(x, norm, w, b, { eps, layout });
  y.backward(Tensor.from(dout, shape));

  const ref = refLayerNormForward(inp, weight, bias, M, D, eps);
  const g = refLayerNormBackward(dout, inp, ref.mean, ref.rstd, weight, M, D);
  const what = `${JSON.stringify(shape)} over ${JSON.stringify(norm)}, affine ${affine}`;
  assertClose(await y.toArray(), ref.out, { atol: 1e-5, rtol: 1e-5, ...outTol }, `out ${what}`);
  assertClose(
    await x.grad!.toArray(),
    g.dinp,
    { atol: 1e-5, rtol: 1e-5, ...gradTol },
    `dinp ${what}`,
  );
  // dweight and dbias sum M rows: float32 summation error grows with the number of terms.
  const sums = { atol: 1e-6 * Math.max(M, 10), rtol: 1e-5, ...sumTol };
  if (w) assertClose(await w.grad!.toArray(), g.dweight, sums, `dweight ${what}`);
  if (b) assertClose(await b.grad!.toArray(), g.dbias, sums, `dbias ${what}`);
  for (const t of [x, w, b, y]) t?.dispose();
}

// Odd sizes (D % 4 != 0 takes the scalar path), batch 1 and 3, then the LeNet shapes.
const SHAPES: [number[], number[]][] = [
  [[3, 1], [1]],
  [[1, 1], [1]],
  [[1, 7], [7]],
  [[3, 7], [7]],
  [[1, 3, 7, 7], [3, 7, 7]],
  [[3, 3, 7, 7], [3, 7, 7]],
  [[1, 513], [513]],
  [[3, 513], [513]],
  [[2, 5, 12], [12]],
  [[256, 6, 24, 24], [6, 24, 24]],
  [[256, 16, 8, 8], [16, 8, 8]],
  [[256, 120], [120]],
  [[256, 84], [84]],
];

for (const [shape, norm] of SHAPES) {
  gpuTest(
    `layerNorm forward/backward vs float64 reference ${JSON.stringify(shape)} over ${
      JSON.stringify(norm)
    }`,
    () => compare(shape, norm, "both", { seed: shape.length + prod(shape) }),
  );
}

gpuTest("layerNorm with several rows per workgroup, or a workgroup per row", async () => {
  // The adapter picks one layout; every layout must give the same answer. Row counts that
  // leave the last workgroup part-empty, short and long rows, aligned and not.
  const layouts: [number, number][] = [[1, 32], [4, 64], [16, 64], [64, 64], [32, 128], [256, 256]];
  for (const [threadsPerRow, workgroupSize] of layouts) {
    for (const [shape, norm] of [[[37, 7], [7]], [[5, 3, 7, 7], [3, 7, 7]], [[19, 84], [84]]]) {
      const layout = layerNormLayout(prod(norm), { threadsPerRow, workgroupSize });
      await compare(shape, norm, "both", { seed: threadsPerRow }, layout);
    }
    const layout = layerNormLayout(1024, { threadsPerRow, workgroupSize });
    await compare([3, 1024], [1024], "none", { seed: 2 }, layout);
  }
  throws(() => layerNormLayout(8, { threadsPerRow: 8, workgroupSize: 4 }), {
    message:
      "layerNorm tuning needs powers of two with threadsPerRow <= workgroupSize, got 8 and 4",
  });
});

gpuTest("layerNorm's dweight and dbias over more rows than one thread's loop may run", async () => {
  // 70,000 rows of 4: the column sums add up 5 dispatches of at most MAX_LOOP rows (one
  // loop of 70,000 iterations was cut at 65,535 on llvmpipe, without a word)
  await compare([70_000, 4], [4], "both", { seed: 5 });
});

gpuTest(
  "layerNorm without affine, or with a lone weight or bias, vs float64 reference",
  async () => {
    for (const [shape, norm] of [[[3, 7], [7]], [[3, 3, 7, 7], [3, 7, 7]], [[5, 84], [84]]]) {
      for (const affine of ["none", "weight", "bias"] as const) await compare(shape, norm, affine);
    }
  },
);

gpuTest("layerNorm is stable for rows of mean 1e4 and std 1", async () => {
  // E[x^2] - E[x]^2 in float32 would lose every digit here (1e8 against a variance of 1).
  // The forward matches float64 to float32 precision on the deviations. The backward
  // reads the saved mean, itself rounded to float32 (as in PyTorch): at 1e4 that is within
  // 2^-11 = 4.9e-4, which shifts each row's xhat by up to that much (rstd ~ 1). dinp then
  // errs by up to ~5e-4 times O(1) row means, and dweight by 4.9e-4 sum_m |dout| < 5e-4 M.
  for (const [shape, norm] of [[[4, 3456], [3456]], [[8, 120], [120]], [[3, 7], [7]]]) {
    const M = shape[0];
    await compare(shape, norm, "both", {
      mean: 1e4,
      outTol: { atol: 1e-5, rtol: 1e-5 },
      gradTol: { atol: 2e-3, rtol: 1e-3 },
      sumTol: { atol: 5e-4 * M },
    });
  }
});

gpuTest("layerNorm matches PyTorch fixtures (forward and backward)", async () => {
  ok(fixture.cases.length >= 4, "fixture has its cases");
  for (const c of fixture.cases) {
    const what = `${JSON.stringify(c.shape)} over ${JSON.stringify(c.normalizedShape)}`;
    const x = Tensor.from(c.inp, { shape: c.shape, requiresGrad: true });
    const w = c.weight
      ? Tensor.from(c.weight, { shape: c.normalizedShape, requiresGrad: true })
      : null;
    const b = c.bias ? Tensor.from(c.bias, { shape: c.normalizedShape, requiresGrad: true }) : null;
    const y = layerNorm(x, c.normalizedShape, w, b, { eps: c.eps });
    y.backward(Tensor.from(c.dout, c.shape));
    const tol = { atol: 1e-5, rtol: 1e-5 };
    assertClose(await y.toArray(), c.out, tol, `out ${what}`);
    assertClose(await x.grad!.toArray(), c.dinp, tol, `dinp ${what}`);
    if (w) assertClose(await w.grad!.toArray(), c.dweight!, tol, `dweight ${what}`);
    if (b) assertClose(await b.grad!.toArray(), c.dbias!, tol, `dbias ${what}`);

    // The float64 reference agrees with PyTorch to the fixture's 7 digits.
    const D = prod(c.normalizedShape), M = prod(c.shape) / D;
    const inp = Float64Array.from(Float32Array.from(c.inp));
    const f32 = (a: number[] | null) => a && Float64Array.from(Float32Array.from(a));
    const ref = refLayerNormForward(inp, f32(c.weight), f32(c.bias), M, D, c.eps);
    const g = refLayerNormBackward(f32(c.dout)!, inp, ref.mean, ref.rstd, f32(c.weight), M, D);
    const tight = { atol: 1e-6, rtol: 1e-6 };
    assertClose(ref.out, c.out, tight, `reference out ${what}`);
    assertClose(g.dinp, c.dinp, tight, `reference dinp ${what}`);
    if (c.dweight) assertClose(g.dweight, c.dweight, tight, `reference dweight ${what}`);
    if (c.dbias) assertClose(g.dbias, c.dbias, tight, `reference dbias ${what}`);
  }
});

gpuTest("layerNorm frees its saved statistics when no gradient is recorded", async () => {
  const x = Tensor.randn([16, 120], { seed: 3 });
  const w = Tensor.ones([120], { requiresGrad: true });
  const b = Tensor.zeros([120], { requiresGrad: true });
  const before = memoryStats().liveBytes;
  for (let i = 0; i < 3; i++) noGrad(() => layerNorm(x, 120, w, b)).dispose();
  layerNorm(x, 120).dispose(); // nothing requires grad
  ok(memoryStats().liveBytes === before, "no buffer outlives its output");
  const y = layerNorm(x, 120, w, b);
  ok(y.requiresGrad && y.gradFn?.op === "layerNorm", "recorded when a parent requires grad");
  const v = await y.toArray();
  ok(v.every(Number.isFinite), "finite output");
  for (const t of [x, w, b, y]) t.dispose();
});

gpuTest("layerNorm of an empty batch: empty output, zero dweight and dbias", async () => {
  const x = Tensor.zeros([0, 5], { requiresGrad: true });
  const w = Tensor.ones([5], { requiresGrad: true });
  const b = Tensor.zeros([5], { requiresGrad: true });
  const y = layerNorm(x, 5, w, b);
  y.sum().backward();
  ok(y.shape.join() === "0,5" && (await y.toArray()).length === 0, "empty output");
  assertClose(await w.grad!.toArray(), [0, 0, 0, 0, 0], { atol: 0 }, "dweight");
  assertClose(await b.grad!.toArray(), [0, 0, 0, 0, 0], { atol: 0 }, "dbias");
});

gpuTest("layerNorm errors name the bad value and the fix", () => {
  const x = Tensor.zeros([256, 6, 12, 12]);
  throws(
    () => layerNorm(x, [6, 24, 24]),
    { message: "layerNorm expects input ending in [6, 24, 24], got [256, 6, 12, 12]" },
  );
  throws(() => layerNorm(Tensor.zeros([120]), [2, 120]), {
    message: "layerNorm expects input ending in [2, 120], got [120]",
  });
  throws(() => layerNorm(x, 12, Tensor.ones([6]), null), {
    message: "layerNorm expects weight of shape [12] (the normalized shape), got [6]",
  });
  throws(() => layerNorm(x, 12, null, Tensor.ones([12, 1])), {
    message: "layerNorm expects bias of shape [12] (the normalized shape), got [12, 1]",
  });
  throws(() => layerNorm(x, []), {
    message: "layerNorm expects a non-empty normalizedShape, got []",
  });
  throws(() => layerNorm(x, 12, null, null, { eps: -1 }), {
    message: "layerNorm expects eps >= 0, got -1",
  });
});
