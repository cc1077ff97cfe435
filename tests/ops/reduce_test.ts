/**
 * `sum` and `mean` on the GPU against the float64 reference: any set of dims, keepdim,
 * shapes with 1 and primes, gradients, and a 1e6-element reduction within float32 bounds.
 */
import { ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Rng } from "../../src/tensor/random.ts";
import { type RefArray, refArray } from "../../src/ops/elementwise/reference.ts";
import {
  type RefDims,
  refMean,
  refReduceBackward,
  refSum,
} from "../../src/ops/reduce/reference.ts";

function hostData(shape: readonly number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  const a = new Float32Array(shape.reduce((p, d) => p * d, 1));
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  return a;
}

const CASES: [number[], RefDims][] = [
  [[3, 1, 7, 513], undefined],
  [[3, 1, 7, 513], []],
  [[3, 1, 7, 513], [0]],
  [[3, 1, 7, 513], [1, 3]],
  [[3, 1, 7, 513], [-1]],
  [[3, 1, 7, 513], [-4, -2]],
  [[3, 1, 7, 513], [0, 1, 2, 3]],
  [[3, 1, 7, 513], 2],
  [[1], [0]],
  [[7, 7], [0]],
  [[7, 7], [1]],
  [[13], undefined],
  [[2, 3, 5, 7, 11], [0, 2, 4]],
  [[1, 1, 1], [1]],
  // Rows of 100 (the innermost reduced dim) split into slices that end mid-row: 30,100
  // values per output over 12 outputs make 11 slices of 2,737.
  [[4, 301, 3, 100], [1, 3]],
  // A per-channel mean of a convolution's output: N and H*W (merged), 6 outputs.
  [[16, 6, 24, 24], [0, 2, 3]],
];

// float32 sums of up to 10773 standard normals: each output's rounding error is a few
// ulps of sum|x| (see the 1e6 test for the bound), well inside these tolerances.
const TOL = { atol: 1e-4, rtol: 1e-5 };

for (const isMean of [false, true]) {
  const name = isMean ? "mean" : "sum";
  gpuTest(`${name} over any dims, keepdim, values and gradients vs float64`, async () => {
    for (const [shape, dims] of CASES) {
      for (const keepdim of [false, true]) {
        const what = `${name}([${shape}], ${JSON.stringify(dims)}, keepdim=${keepdim})`;
        const host = hostData(shape, shape.length + shape[0]);
        const x = Tensor.from(host, { shape: shape, requiresGrad: true });
        const y = isMean ? x.mean(dims, keepdim) : x.sum(dims, keepdim);
        const r: RefArray = refArray(host, shape);
        const want = isMean ? refMean(r, dims, keepdim) : refSum(r, dims, keepdim);
        ok(
          y.shape.join() === want.shape.join() && y.rank === want.shape.length,
          `${what}: shape [${y.shape}] != reference [${want.shape}]`,
        );
        assertClose(await y.toArray(), want.data, TOL, `${what} value`);
        const d = hostData(want.shape, 42);
        y.backward(Tensor.from(d, want.shape));
        const dinp = refReduceBackward(shape, dims, keepdim, refArray(d, want.shape), isMean);
        assertClose(await x.grad!.toArray(), dinp.data, TOL, `${what} gradient`);
        x.dispose();
        y.dispose();
      }
    }
  });
}

Deno.test("reference reduce backward matches central differences", () => {
  for (const [shape, dims] of CASES.filter(([s]) => s.reduce((p, d) => p * d, 1) < 2000)) {
    for (const isMean of [false, true]) {
      const x = refArray(hostData(shape, 3), shape);
      const fwd = (v: RefArray) => (isMean ? refMean(v, dims, true) : refSum(v, dims, true));
      const y = fwd(x);
      const dout = refArray(hostData(y.shape, 4), y.shape);
      const h = 1e-6;
      const f = (v: RefArray) => fwd(v).data.reduce((s, yi, i) => s + yi * dout.data[i], 0);
      const numeric = x.data.map((_, i) => {
        const plus = x.data.slice(), minus = x.data.slice();
        plus[i] += h;
        minus[i] -= h;
        return (f({ shape, data: plus }) - f({ shape, data: minus })) / (2 * h);
      });
      const analytic = refReduceBackward(shape, dims, true, dout, isMean);
      assertClose(analytic.data, numeric, { atol: 1e-7, rtol: 1e-6 }, `[${shape}] ${dims}`);
    }
  }
});

gpuTest("a 1e6-element sum stays within the float32 error bound", async () => {
  const n = 1_000_000;
  const rng = new Rng(2026);
  const host = new Float32Array(n);
  for (let i = 0; i < n; i++) host[i] = rng.uniform(); // all positive: no cancellation
  let exact = 0, absSum = 0;
  for (const v of host) {
    exact += v;
    absSum += Math.abs(v);
  }
  const x = Tensor.from(host, [n]);
  const got = await x.sum().item();
  // reduce.wgsl splits one long output into 128 slices of ceil(n / 128) values; in each,
  // WG = 64 threads add ceil(slice / WG) values in order, then a tree of log2(WG) levels;
  // the 128 partial sums are reduced the same way (2 values per thread, then the tree).
  // Higham's bound for that order: |error| <= gamma_k * sum|x|, gamma_k = k u / (1 - k u),
  // u = 2^-24, k the longest chain of additions: ceil(ceil(n / 128) / 64) + 6 + 2 + 6.
  const u = 2 ** -24, k = Math.ceil(Math.ceil(n / 128) / 64) + 6 + 2 + 6;
  const bound = (k * u / (1 - k * u)) * absSum;
  const err = Math.abs(got - exact);
  ok(err <= bound, `sum of 1e6: error ${err} exceeds the float32 bound ${bound}`);
  // Rounding errors of a blocked sum are far below that worst case in practice: compare
  // with one float32 accumulator over all n values, the naive order.
  let naive = 0;
  for (const v of host) naive = Math.fround(naive + v);
  const naiveErr = Math.abs(naive - exact);
  ok(err < naiveErr, `blocked GPU sum error ${err} is not below the naive sum's ${naiveErr}`);
  const mean = await x.mean().item();
  assertClose([mean], [exact / n], { atol: 0, rtol: (bound / absSum) + u }, "mean of 1e6");
  x.dispose();
});

gpuTest("reduce errors name the bad dim", () => {
  const x = Tensor.zeros([2, 3]);
  let message = "";
  try {
    x.sum([2]);
  } catch (e) {
    message = (e as Error).message;
  }
  ok(message.includes("2") && message.includes("rank 2"), `got: "${message}"`);
  x.dispose();
});

gpuTest("sum: reductions longer than llvmpipe's 65535-iteration loop cap are exact", async () => {
  // 2e7 ones reduced into one output (before the split this returned 43690 on llvmpipe),
  // and 3.1e6 per output with kept dims in front and behind the reduced one.
  using ones = Tensor.full([20_000_000], 1);
  using total = ones.sum();
  ok((await total.item()) === 20_000_000, `sum of 2e7 ones = ${await total.item()}`);
  using block = Tensor.full([2, 3_100_003, 1], 1);
  using rows = block.mean(1);
  assertClose(await rows.toArray(), [1, 1], { atol: 0, rtol: 1e-6 }, "mean over a 3.1e6 dim");
});

gpuTest("max and min over any dims vs a host reference; NaN wins, as in PyTorch", async () => {
  const cases: [number[], number[]][] = [
    [[2, 3, 5, 7, 11], [0, 2, 4]], // rows of 11: one index decomposition per element
    [[4, 301, 3, 100], [1, 3]], // rows of 100, slices ending mid-row
    [[3, 70001], [1]], // one long row per output, split
    [[5, 1, 1], [1, 2]], // only size-1 dims reduced
  ];
  for (const [shape, dims] of cases) {
    const host = hostData(shape, 7);
    host[host.length - 1] = NaN; // in the last output's reduction
    using x = Tensor.from(host, shape);
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const kept = shape.map((_, i) => i).filter((i) => !dims.includes(i));
    const nOut = kept.reduce((a, i) => a * shape[i], 1);
    for (const op of ["max", "min"] as const) {
      const want = new Float64Array(nOut).fill(op === "max" ? -Infinity : Infinity);
      host.forEach((v, flat) => {
        let o = 0;
        for (const i of kept) o = o * shape[i] + Math.floor(flat / strides[i]) % shape[i];
        want[o] = Number.isNaN(v) || Number.isNaN(want[o]) ? NaN : Math[op](want[o], v);
      });
      using y = x[op](dims);
      const got = await y.toArray();
      const what = `${op}([${shape}], [${dims}])`;
      ok(got.length === nOut, `${what}: ${got.length} outputs, want ${nOut}`);
      for (let o = 0; o < nOut; o++) {
        const same = Number.isNaN(want[o]) ? Number.isNaN(got[o]) : got[o] === Math.fround(want[o]);
        ok(same, `${what}[${o}] = ${got[o]}, want ${want[o]}`);
      }
    }
  }
});
