import { deepEqual, ok } from "node:assert/strict";
/**
 * Elementwise ops on the GPU against the float64 reference (values and gradients, with
 * broadcasting), and the reference's own gradients against central differences.
 */
import { gpuTest } from "../gpu_test.ts";
import { assertClose, type Tolerance } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { coalesce } from "../../src/ops/elementwise/elementwise.ts";
import { Rng } from "../../src/tensor/random.ts";
import {
  type RefArray,
  refArray,
  refBinary,
  refBinaryBackward,
  type RefBinaryOp,
  refScalar,
  refScalarBackward,
  refUnary,
  refUnaryBackward,
  type RefUnaryOp,
} from "../../src/ops/elementwise/reference.ts";

/** Seeded float32 values in [low, high) (or standard normal when low is undefined). */
function hostData(shape: readonly number[], seed: number, low?: number, high = 1): Float32Array {
  const rng = new Rng(seed);
  const n = shape.reduce((p, d) => p * d, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = low === undefined ? rng.normal() : low + (high - low) * rng.uniform();
  }
  return a;
}

interface Input {
  shape: number[];
  low?: number;
  high?: number;
}

/**
 * Runs `gpu` on seeded inputs and compares its value, and the input gradients for a random
 * upstream gradient, with the float64 reference `ref` / `refGrad`.
 */
async function checkOp(
  what: string,
  inputs: Input[],
  gpu: (ts: Tensor[]) => Tensor,
  ref: (rs: RefArray[]) => RefArray,
  refGrad: (rs: RefArray[], dout: RefArray) => RefArray[],
  tol: Tolerance,
  seed = 1,
): Promise<void> {
  const host = inputs.map((inp, k) => hostData(inp.shape, seed + 10 * k, inp.low, inp.high));
  const ts = host.map((h, k) => Tensor.from(h, { shape: inputs[k].shape, requiresGrad: true }));
  const rs = host.map((h, k) => refArray(h, inputs[k].shape));
  const want = ref(rs);
  const out = gpu(ts);
  ok(
    out.shape.join() === want.shape.join(),
    `${what}: shape [${out.shape}] != reference [${want.shape}]`,
  );
  assertClose(await out.toArray(), want.data, tol, `${what} value`);
  const doutHost = hostData(want.shape, seed + 99);
  const dout = Tensor.from(doutHost, want.shape);
  out.backward(dout);
  const grads = refGrad(rs, refArray(doutHost, want.shape));
  for (let k = 0; k < ts.length; k++) {
    ok(ts[k].grad, `${what}: input ${k} got no gradient`);
    ok(
      ts[k].grad!.shape.join() === inputs[k].shape.join(),
      `${what}: grad ${k} shape [${ts[k].grad!.shape}] != input shape [${inputs[k].shape}]`,
    );
    assertClose(await ts[k].grad!.toArray(), grads[k].data, tol, `${what} d(input ${k})`);
  }
  for (const t of [...ts, out, dout]) t.dispose();
}

/** Central differences of f = sum(dout * fwd(inputs)) with respect to every input element. */
function centralDifferences(
  inputs: RefArray[],
  fwd: (rs: RefArray[]) => RefArray,
  dout: RefArray,
  h = 1e-6,
): Float64Array[] {
  const f = (rs: RefArray[]) => {
    const y = fwd(rs).data;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += dout.data[i] * y[i];
    return s;
  };
  return inputs.map((inp, k) => {
    const g = new Float64Array(inp.data.length);
    for (let i = 0; i < g.length; i++) {
      const at = (delta: number) => {
        const data = inp.data.slice();
        data[i] += delta;
        return f(inputs.map((r, j) => (j === k ? { shape: r.shape, data } : r)));
      };
      g[i] = (at(h) - at(-h)) / (2 * h);
    }
    return g;
  });
}

const BINARY_OPS: RefBinaryOp[] = ["add", "sub", "mul", "div", "pow"];
const UNARY_OPS: RefUnaryOp[] = ["square", "sqrt", "exp", "log", "sigmoid", "relu", "neg"];

/** Broadcasting pairs: rank mismatch, size-1 dims on both sides, scalars, odd sizes. */
const SHAPE_PAIRS: [number[], number[]][] = [
  [[3, 1, 5], [4, 1]],
  [[7, 7], [7, 7]],
  [[1], [13]],
  [[], [3, 2]],
  [[2, 3, 5], []],
  [[2, 3, 4], [4]],
  [[5, 1], [1, 6]],
  [[2, 1, 3, 1], [1, 7, 1, 11]],
  [[307], [307]],
];

/** Inputs that keep each op away from its poles and branch cuts. */
function operands(op: RefBinaryOp, a: number[], b: number[]): Input[] {
  if (op === "pow") return [{ shape: a, low: 0.5, high: 2 }, { shape: b, low: -2, high: 2 }];
  if (op === "div") return [{ shape: a }, { shape: b, low: 0.5, high: 2 }];
  return [{ shape: a }, { shape: b }];
}

// float32 rounding of one op (a few ulps) and of gradient sums over at most 77
// broadcast positions of values of order 1.
const TOL: Tolerance = { atol: 1e-5, rtol: 1e-5 };

for (const op of BINARY_OPS) {
  gpuTest(`binary ${op}: values and gradients vs float64, with broadcasting`, async () => {
    for (const [a, b] of SHAPE_PAIRS) {
      await checkOp(
        `${op} [${a}] with [${b}]`,
        operands(op, a, b),
        ([x, y]) => x[op](y),
        ([x, y]) => refBinary(op, x, y),
        ([x, y], d) => refBinaryBackward(op, x, y, d),
        TOL,
      );
    }
  });
}

gpuTest("scalar variants: add, sub, mul, div, pow with a number", async () => {
  const cases: [RefBinaryOp, number][] = [
    ["add", 2.5],
    ["sub", -1.25],
    ["mul", -3],
    ["div", 7],
    ["pow", 2],
    ["pow", 3],
    ["pow", 0.5],
    ["pow", -1],
    ["pow", 0],
  ];
  for (const [op, c] of cases) {
    const low = op === "pow" ? 0.5 : undefined;
    for (const shape of [[1], [7, 7], [3, 1, 7, 13]]) {
      await checkOp(
        `${op}(x, ${c}) on [${shape}]`,
        [{ shape, low, high: 2 }],
        ([x]) => x[op](c),
        ([x]) => refScalar(op, x, c),
        ([x], d) => [refScalarBackward(op, x, c, d)],
        TOL,
      );
    }
  }
});

gpuTest("pow with a negative base follows PyTorch: integer exponents only", async () => {
  const x = Tensor.from([-2, -0.5, -3]);
  const got = await x.pow(3).toArray();
  assertClose(got, refScalar("pow", refArray([-2, -0.5, -3], [3]), 3).data, TOL, "(-x)^3");
  const frac = await x.pow(0.5).toArray();
  ok(frac.every(Number.isNaN), `(-x)^0.5 should be NaN, got ${frac}`);
});

for (const op of UNARY_OPS) {
  gpuTest(`unary ${op}: values and gradients vs float64`, async () => {
    // sqrt and log need positive inputs; the others see both signs.
    const low = op === "sqrt" || op === "log" ? 0.1 : -4;
    for (const shape of [[1], [7, 7], [3, 1, 7, 13], [1031]]) {
      await checkOp(
        `${op} on [${shape}]`,
        [{ shape, low, high: 4 }],
        ([x]) => x[op](),
        ([x]) => refUnary(op, x),
        ([x], d) => [refUnaryBackward(op, x, d)],
        TOL,
      );
    }
  });
}

Deno.test("reference gradients match central differences", () => {
  const check = (
    what: string,
    inputs: RefArray[],
    fwd: (rs: RefArray[]) => RefArray,
    bwd: (rs: RefArray[], d: RefArray) => RefArray[],
  ) => {
    const y = fwd(inputs);
    const dout = refArray(hostData(y.shape, 5), y.shape);
    const numeric = centralDifferences(inputs, fwd, dout);
    const analytic = bwd(inputs, dout);
    numeric.forEach((g, k) => assertClose(analytic[k].data, g, { atol: 1e-6, rtol: 1e-6 }, what));
  };
  const ref = (shape: number[], seed: number, low?: number, high?: number) =>
    refArray(hostData(shape, seed, low, high), shape);
  for (const op of BINARY_OPS) {
    for (const [a, b] of [[[3, 1, 5], [4, 1]], [[2, 3], []], [[5], [5]]]) {
      const [ia, ib] = operands(op, a, b);
      check(
        `${op} [${a}] with [${b}]`,
        [ref(ia.shape, 1, ia.low, ia.high), ref(ib.shape, 2, ib.low, ib.high)],
        ([x, y]) => refBinary(op, x, y),
        ([x, y], d) => refBinaryBackward(op, x, y, d),
      );
    }
    const c = op === "pow" ? 2.5 : 1.5;
    check(
      `${op}(x, ${c})`,
      [ref([2, 7], 3, 0.5, 2)],
      ([x]) => refScalar(op, x, c),
      ([x], d) => [refScalarBackward(op, x, c, d)],
    );
  }
  for (const op of UNARY_OPS) {
    const low = op === "sqrt" || op === "log" ? 0.1 : -4;
    check(
      op,
      [ref([3, 7], 4, low, 4)],
      ([x]) => refUnary(op, x),
      ([x], d) => [refUnaryBackward(op, x, d)],
    );
  }
});

gpuTest("shape errors name both shapes", () => {
  const a = Tensor.zeros([3, 4]);
  const b = Tensor.zeros([5]);
  let message = "";
  try {
    a.add(b);
  } catch (e) {
    message = (e as Error).message;
  }
  ok(message.includes("[3, 4]") && message.includes("[5]"), `got: "${message}"`);
  let expandMessage = "";
  try {
    b.broadcastTo([2, 4]);
  } catch (e) {
    expandMessage = (e as Error).message;
  }
  ok(expandMessage.includes("[5]") && expandMessage.includes("[2, 4]"), expandMessage);
  a.dispose();
  b.dispose();
});

gpuTest("broadcastTo: values and the gradient that sums the broadcast positions", async () => {
  const host = hostData([3, 1, 5], 7);
  const x = Tensor.from(host, { shape: [3, 1, 5], requiresGrad: true });
  const y = x.broadcastTo([2, 3, 4, 5]);
  const want = refBinary(
    "add",
    refArray(host, [3, 1, 5]),
    refArray(new Float64Array(120), [2, 3, 4, 5]),
  );
  assertClose(await y.toArray(), want.data, TOL, "expand value");
  const d = hostData([2, 3, 4, 5], 8);
  y.backward(Tensor.from(d, [2, 3, 4, 5]));
  const [dx] = refBinaryBackward(
    "add",
    refArray(host, [3, 1, 5]),
    refArray(new Float64Array(120), [2, 3, 4, 5]),
    refArray(d, [2, 3, 4, 5]),
  );
  assertClose(await x.grad!.toArray(), dx.data, TOL, "expand gradient");
});

gpuTest(
  "broadcasting runs of 16, 8, 4, 2 and 1 elements per thread match the reference (#8.6)",
  async () => {
    const cases: [number[], number[]][] = [
      [[3, 5, 16], [1, 5, 1]], // per-channel, runs of 16
      [[2, 3, 24], [2, 1, 24]], // b steps with a along the row, runs of 8
      [[4, 7, 12], [7, 1]], // runs of 4
      [[5, 6], [1, 6]], // rows of 6: runs of 2
      [[7, 1], [1, 9]], // an outer product: rows of 9, runs of 1
      [[2, 1, 3, 1], [1, 4, 1, 5]], // both broadcast, four dimensions
    ];
    for (const [sa, sb] of cases) {
      const a = hostData(sa, 1), b = hostData(sb, 2);
      const ta = Tensor.from(a, sa), tb = Tensor.from(b, sb);
      for (const op of ["add", "mul", "sub"] as const) {
        const want = refBinary(op, refArray(a, sa), refArray(b, sb));
        const got = op === "add" ? ta.add(tb) : op === "mul" ? ta.mul(tb) : ta.sub(tb);
        deepEqual(got.shape, want.shape);
        assertClose(
          await got.toArray(),
          want.data,
          { atol: 1e-6, rtol: 1e-6 },
          `${sa} ${op} ${sb}`,
        );
        // ...and b op a, the broadcast operand first.
        const back = op === "add" ? tb.add(ta) : op === "mul" ? tb.mul(ta) : tb.sub(ta);
        const wantBack = refBinary(op, refArray(b, sb), refArray(a, sa));
        assertClose(
          await back.toArray(),
          wantBack.data,
          { atol: 1e-6, rtol: 1e-6 },
          `${sb} ${op} ${sa}`,
        );
      }
    }
  },
);

Deno.test("coalesce merges dimensions that every operand steps through alike", () => {
  // [N, C, H, W] against [1, C, 1, 1]: H and W merge, N stays (b is broadcast there).
  deepEqual(coalesce([2, 3, 4, 5], [[60, 20, 5, 1], [0, 1, 0, 0]]), {
    shape: [2, 3, 20],
    strides: [[60, 20, 1], [0, 1, 0]],
  });
  deepEqual(coalesce([2, 3, 4], [[12, 4, 1], [12, 4, 1]]), { shape: [24], strides: [[1], [1]] });
  deepEqual(coalesce([1, 5, 1], [[0, 1, 0], [0, 0, 0]]), { shape: [5], strides: [[1], [0]] });
});
