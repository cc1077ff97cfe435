// Tensor's PyTorch basics (issue 24): softmax, logSoftmax, argmax, tanh, relu and matmul,
// forward against float64 references written here as plain loops, gradients against
// central differences of those references.
import { deepEqual, equal, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { centralDiff } from "../central_diff.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Rng } from "../../src/tensor/random.ts";

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** For each (outer, inner) position, the indices along `dim` of a row-major tensor. */
function lines(shape: readonly number[], dim: number): number[][] {
  const inner = numel(shape.slice(dim + 1)), n = shape[dim];
  const outer = numel(shape.slice(0, dim));
  const out: number[][] = [];
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      out.push(Array.from({ length: n }, (_, k) => (o * n + k) * inner + i));
    }
  }
  return out;
}

function refSoftmax(x: Float64Array, shape: number[], dim: number, log: boolean): Float64Array {
  const y = new Float64Array(x.length);
  for (const line of lines(shape, dim)) {
    const m = Math.max(...line.map((i) => x[i]));
    const s = line.reduce((acc, i) => acc + Math.exp(x[i] - m), 0);
    for (const i of line) y[i] = log ? x[i] - m - Math.log(s) : Math.exp(x[i] - m) / s;
  }
  return y;
}

function refArgmax(x: Float64Array, shape: number[], dim: number): number[] {
  return lines(shape, dim).map((line) => {
    let best = 0;
    for (let k = 0; k < line.length; k++) {
      const v = x[line[k]], b = x[line[best]];
      if (Number.isNaN(b)) break;
      if (Number.isNaN(v) || v > b) best = k;
    }
    return best;
  });
}

function refMatmul(a: Float64Array, b: Float64Array, M: number, K: number, P: number) {
  const c = new Float64Array(M * P);
  for (let m = 0; m < M; m++) {
    for (let p = 0; p < P; p++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[m * K + k] * b[k * P + p];
      c[m * P + p] = s;
    }
  }
  return c;
}

function randn(n: number, rng: Rng, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround(scale * rng.normal()));
}

/** sum(f(x) * dout): its gradient is what backward(dout) gives. */
function dot(y: Float64Array, dout: Float64Array): number {
  return y.reduce((s, v, i) => s + v * dout[i], 0);
}

const cases: [number[], number][] = [[[1], 0], [[7], 0], [[3, 5], 1], [[3, 5], 0], [
  [2, 3, 7],
  -2,
], [[4, 513], 1]];

for (const [shape, dim] of cases) {
  for (const log of [false, true]) {
    const name = log ? "logSoftmax" : "softmax";
    gpuTest(
      `${name}(${dim}) of ${JSON.stringify(shape)}: float64 reference, central differences`,
      async () => {
        const n = numel(shape);
        const rng = new Rng(n + dim);
        // an offset of 1000 on the first line: exp(x) alone would overflow
        const x = randn(n, rng, 3).map((v, i) => Math.fround(i < 3 ? v + 1000 : v));
        const dout = randn(n, rng);
        const d = dim < 0 ? dim + shape.length : dim;
        const xt = Tensor.from(Float32Array.from(x), { shape, requiresGrad: true });
        const y = log ? xt.logSoftmax(dim) : xt.softmax(dim);
        deepEqual(y.shape, shape);
        y.backward(Tensor.from(Float32Array.from(dout), shape));
        const want = refSoftmax(x, shape, d, log);
        assertClose(await y.toArray(), want, { atol: 1e-6, rtol: 1e-5 }, `${name} out`);
        const small = n <= 200; // central differences cost 2n reference passes
        const xs = Float64Array.from(x);
        const num = small
          ? centralDiff(xs, () => dot(refSoftmax(xs, shape, d, log), dout))
          // the exact gradient: softmax: s (dout - sum(dout s)); log: dout - s sum(dout)
          : (() => {
            const s = refSoftmax(x, shape, d, false), g = new Float64Array(n);
            for (const line of lines(shape, d)) {
              const sum = line.reduce((a, i) => a + dout[i] * (log ? 1 : s[i]), 0);
              for (const i of line) g[i] = log ? dout[i] - s[i] * sum : s[i] * (dout[i] - sum);
            }
            return g;
          })();
        assertClose(await xt.grad!.toArray(), num, { atol: 1e-5, rtol: 1e-4 }, `${name} dinp`);
      },
    );
  }
}

gpuTest("softmax checks its dim", () => {
  const x = Tensor.zeros([2, 3]);
  throws(() => x.softmax(2), /softmax: dim 2 is out of range for \[2, 3\]; use a dim in \[-2, 2\)/);
  throws(() => x.logSoftmax(0.5), /logSoftmax: dim must be an integer, got 0.5/);
});

for (
  const [shape, dim] of [[[1], 0], [[9], 0], [[3, 5], 1], [[3, 5], 0], [[2, 7, 3], 1]] as const
) {
  gpuTest(`argmax(${dim}) of ${JSON.stringify(shape)}: first maximum, NaN first`, async () => {
    const n = numel(shape);
    const rng = new Rng(7 * n);
    // small integers: many ties
    const x = Float64Array.from({ length: n }, () => Math.floor(3 * rng.uniform()));
    if (n > 4) x[4] = NaN;
    const xt = Tensor.from(Float32Array.from(x), [...shape]);
    const got = xt.argmax(dim);
    deepEqual(got.shape, shape.filter((_, i) => i !== dim));
    deepEqual(Array.from(await got.toArray()), refArgmax(x, [...shape], dim));
    deepEqual(xt.argmax(dim, true).shape, shape.map((s, i) => (i === dim ? 1 : s)));
    const flat = xt.argmax();
    deepEqual(flat.shape, []);
    equal(await flat.item(), refArgmax(x, [n], 0)[0]);
  });
}

gpuTest("argmax of a tensor that requires grad records nothing", async () => {
  const x = Tensor.from([[0, 2], [3, -1]], { requiresGrad: true });
  const i = x.argmax(1);
  equal(i.requiresGrad, false);
  deepEqual(Array.from(await i.toArray()), [1, 0]);
  throws(() => Tensor.zeros([2, 0]).argmax(1), /argmax: dimension 1 of \[2, 0\] is empty/);
});

gpuTest("tanh and relu: float64 reference, central differences", async () => {
  const rng = new Rng(3);
  const x = randn(307, rng, 3);
  x[0] = 0, x[1] = 20, x[2] = -20, x[3] = 1e-3;
  const dout = randn(307, rng);
  for (const [name, f] of [["tanh", Math.tanh], ["relu", (v: number) => Math.max(v, 0)]] as const) {
    const xt = Tensor.from(Float32Array.from(x), { requiresGrad: true });
    const y = name === "tanh" ? xt.tanh() : xt.relu();
    y.backward(Tensor.from(Float32Array.from(dout)));
    assertClose(await y.toArray(), x.map(f), { atol: 2e-7, rtol: 1e-6 }, `${name} out`);
    const xs = Float64Array.from(x);
    if (name === "relu") xs[0] = 1e-3; // central differences straddle the kink at 0
    const num = centralDiff(xs, () => dot(xs.map(f), dout));
    if (name === "relu") num[0] = 0; // PyTorch's gradient at exactly 0
    assertClose(await xt.grad!.toArray(), num, { atol: 1e-5, rtol: 1e-4 }, `${name} dinp`);
  }
});

gpuTest("the matmul reference's gradients match central differences", () => {
  const [M, K, P] = [3, 4, 5];
  const rng = new Rng(11);
  const a = randn(M * K, rng), b = randn(K * P, rng), dout = randn(M * P, rng);
  const loss = () => dot(refMatmul(a, b, M, K, P), dout);
  // dA = dout @ B^T and dB = A^T @ dout, as the kernels compute them
  const da = refMatmul(dout, transpose(b, K, P), M, P, K);
  const db = refMatmul(transpose(a, M, K), dout, K, M, P);
  assertClose(da, centralDiff(a, loss), { atol: 1e-7, rtol: 1e-7 }, "dA");
  assertClose(db, centralDiff(b, loss), { atol: 1e-7, rtol: 1e-7 }, "dB");
});

function transpose(x: Float64Array, R: number, C: number): Float64Array {
  const t = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) t[c * R + r] = x[r * C + c];
  return t;
}

// Sizes with odd and prime dimensions; 130 rows with K a multiple of 4 take llvmpipe's
// uniform-chunk kernels (from 128 rows), the others the 4x4-tile products.
for (
  const [aShape, bShape] of [
    [[1, 1], [1, 1]],
    [[3, 5], [5, 7]],
    [[7, 13], [13, 3]],
    [[130, 20], [20, 9]],
    [[2, 3, 5], [5, 4]],
    [[5], [5, 3]],
    [[4, 5], [5]],
    [[6], [6]],
  ]
) {
  gpuTest(
    `matmul ${JSON.stringify(aShape)} @ ${JSON.stringify(bShape)}: float64 reference`,
    async () => {
      const K = aShape.at(-1)!, P = bShape.length === 2 ? bShape[1] : 1;
      const M = numel(aShape) / K;
      const rng = new Rng(M * 100 + K * 10 + P);
      const a = randn(M * K, rng), b = randn(K * P, rng), dout = randn(M * P, rng);
      const at = Tensor.from(Float32Array.from(a), { shape: aShape, requiresGrad: true });
      const bt = Tensor.from(Float32Array.from(b), { shape: bShape, requiresGrad: true });
      const y = at.matmul(bt);
      const want = [...aShape.slice(0, -1), ...bShape.slice(1)];
      deepEqual(y.shape, want);
      y.backward(Tensor.from(Float32Array.from(dout), want));
      const tol = { atol: 1e-5, rtol: 1e-5 };
      assertClose(await y.toArray(), refMatmul(a, b, M, K, P), tol, "out");
      assertClose(
        await at.grad!.toArray(),
        refMatmul(dout, transpose(b, K, P), M, P, K),
        tol,
        "dA",
      );
      assertClose(
        await bt.grad!.toArray(),
        refMatmul(transpose(a, M, K), dout, K, M, P),
        tol,
        "dB",
      );
    },
  );
}

gpuTest("matmul with an empty inner dimension gives zeros, as PyTorch", async () => {
  const y = Tensor.zeros([3, 0]).matmul(Tensor.zeros([0, 2]));
  deepEqual(y.shape, [3, 2]);
  deepEqual(Array.from(await y.toArray()), [0, 0, 0, 0, 0, 0]);
});

gpuTest("matmul refuses mismatched and batched operands, naming both shapes", () => {
  throws(
    () => Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5])),
    /matmul: the inner sizes differ, \[2, 3\] @ \[4, 5\] \(3 against 4\)/,
  );
  throws(
    () => Tensor.zeros([2, 3]).matmul(Tensor.zeros([2, 3, 5])),
    /a batched right operand is not supported; reshape it to 2-D/,
  );
});
