import { ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  avgPool2d,
  maxPool2d,
  POOL_PLAIN,
  POOL_SCHEDULES,
  poolSchedule,
} from "../../src/ops/pool/pool.ts";
import { adapterProfile } from "../../src/gpu/device.ts";
import {
  type PoolDims,
  refAvgPool2dBackward,
  refAvgPool2dForward,
  refMaxPool2dBackward,
  refMaxPool2dForward,
  refPoolOutSize,
} from "../../src/ops/pool/reference.ts";
import { Rng } from "../../src/tensor/random.ts";
import { centralDiff } from "../central_diff.ts";
import fx from "../fixtures/conv_pool.json" with { type: "json" };

function randArray(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

function dims([n, c, h, w]: number[], [kh, kw]: number[], [sh, sw]: number[], [ph, pw]: number[]) {
  return { n, c, h, w, kh, kw, sh, sw, ph, pw };
}

Deno.test("pooling reference backward matches central differences", () => {
  for (
    const d of [
      dims([2, 2, 5, 6], [2, 2], [2, 2], [0, 0]),
      dims([1, 2, 7, 7], [3, 3], [2, 1], [1, 1]),
    ]
  ) {
    const [OH, OW] = refPoolOutSize(d);
    const rng = new Rng(d.h * 100 + d.kh);
    // distinct values, so that max is differentiable at the sample point
    const inp = Float64Array.from(randArray(d.n * d.c * d.h * d.w, rng));
    const dout = Float64Array.from(randArray(d.n * d.c * OH * OW, rng));
    const cases: [string, () => Float64Array, Float64Array][] = [
      [
        "max",
        () => refMaxPool2dForward(inp, d).out,
        refMaxPool2dBackward(refMaxPool2dForward(inp, d).indices, dout, d),
      ],
      ["avg", () => refAvgPool2dForward(inp, d), refAvgPool2dBackward(dout, d)],
    ];
    for (const [what, fwd, dinp] of cases) {
      const loss = () => fwd().reduce((s, v, i) => s + v * dout[i], 0);
      const h = 1e-6;
      const num = centralDiff(inp, loss, h);
      assertClose(dinp, num, { atol: 1e-7, rtol: 1e-7 }, `${what} pool dinp, central differences`);
    }
  }
});

// [N, C, H, W], kernel, stride, padding: stride != kernel, overlapping windows, disjoint
// windows that do and do not tile the input, padding, 1x1 inputs, 7x7, primes, the LeNet pools.
const CASES: [number[], number[], number[], number[]][] = [
  // LeNet's pools at batch 1, 2 and 3: after conv1 (24 and 28 wide) and conv2 (8 and 10)
  [[1, 6, 24, 24], [2, 2], [2, 2], [0, 0]],
  [[2, 16, 8, 8], [2, 2], [2, 2], [0, 0]],
  [[3, 6, 28, 28], [2, 2], [2, 2], [0, 0]],
  [[2, 16, 10, 10], [2, 2], [2, 2], [0, 0]],
  [[1, 1, 1, 1], [1, 1], [1, 1], [0, 0]],
  [[3, 2, 7, 7], [2, 2], [2, 2], [0, 0]],
  [[3, 2, 7, 7], [3, 3], [2, 2], [1, 1]],
  [[2, 3, 7, 5], [3, 2], [1, 2], [1, 1]],
  [[1, 5, 11, 13], [3, 3], [1, 1], [1, 0]],
  [[2, 1, 9, 9], [4, 4], [3, 3], [2, 2]],
  [[2, 2, 8, 7], [2, 2], [3, 3], [1, 1]],
  [[256, 6, 24, 24], [2, 2], [2, 2], [0, 0]],
  [[256, 16, 8, 8], [2, 2], [2, 2], [0, 0]],
  // 2x2/2 on rows of whole vec4s (the pool2_* kernels): partial last quads (OW = 14, 6),
  // an odd height (a row in no window), one image and channel
  [[2, 3, 28, 28], [2, 2], [2, 2], [0, 0]],
  [[3, 1, 5, 12], [2, 2], [2, 2], [0, 0]],
  [[1, 3, 7, 8], [2, 2], [2, 2], [0, 0]],
  [[1, 1, 2, 4], [2, 2], [2, 2], [0, 0]],
  // 2x2/2 on even rows that are not whole vec4s (the pool2_flat_* kernels, 4 outputs of the
  // flattened output per thread): plain LeNet's 10x10 (150 outputs, a partial last thread),
  // an odd height, one output in all
  [[3, 2, 10, 10], [2, 2], [2, 2], [0, 0]],
  [[2, 3, 7, 6], [2, 2], [2, 2], [0, 0]],
  [[1, 1, 2, 2], [2, 2], [2, 2], [0, 0]],
];

for (
  const [schedule, [inShape, k, s, pd]] of POOL_SCHEDULES.flatMap((sc) =>
    CASES.map((c) => [sc, c] as const)
  )
) {
  const d: PoolDims = dims(inShape, k, s, pd);
  const [OH, OW] = refPoolOutSize(d);
  const opts = { stride: s as [number, number], padding: pd as [number, number], schedule };
  const name = `inp [${inShape}] kernel ${k} stride ${s} padding ${pd} (${schedule.name} schedule)`;
  gpuTest(`maxPool2d forward/backward vs float64 reference: ${name}`, async () => {
    const rng = new Rng(inShape.reduce((a, b) => a * 31 + b, k[0]));
    // rounded to a few values so that ties occur: the first maximum must win
    const x = randArray(d.n * d.c * d.h * d.w, rng).map((v) => Math.round(v * 2));
    const dy = randArray(d.n * d.c * OH * OW, rng);
    const inp = Tensor.from(x, { shape: inShape, requiresGrad: true });
    const out = maxPool2d(inp, k as [number, number], opts);
    ok(out.shape.join() === [d.n, d.c, OH, OW].join(), `output shape ${out.shape}`);
    out.backward(Tensor.from(dy, out.shape));
    const want = refMaxPool2dForward(x, d);
    assertClose(await out.toArray(), want.out, { atol: 0, rtol: 0 }, "out");
    assertClose(await inp.grad!.toArray(), refMaxPool2dBackward(want.indices, dy, d), {
      atol: 1e-6,
      rtol: 1e-6,
    }, "dinp");
  });
  gpuTest(`avgPool2d forward/backward vs float64 reference: ${name}`, async () => {
    const rng = new Rng(inShape.reduce((a, b) => a * 37 + b, k[1]));
    const x = randArray(d.n * d.c * d.h * d.w, rng);
    const dy = randArray(d.n * d.c * OH * OW, rng);
    const inp = Tensor.from(x, { shape: inShape, requiresGrad: true });
    const out = avgPool2d(inp, k as [number, number], opts);
    ok(out.shape.join() === [d.n, d.c, OH, OW].join(), `output shape ${out.shape}`);
    out.backward(Tensor.from(dy, out.shape));
    assertClose(await out.toArray(), refAvgPool2dForward(x, d), { atol: 1e-6, rtol: 1e-6 }, "out");
    assertClose(
      await inp.grad!.toArray(),
      refAvgPool2dBackward(dy, d),
      { atol: 1e-6, rtol: 1e-6 },
      "dinp",
    );
  });
}

// maxPool2d with an activation: act(max) forward, dout * act'(y) routed to the maxima
// backward; fused kernels on 2x2/2 windows (rows of whole vec4s or not, a partial last thread),
// two ops elsewhere.
for (
  const [inShape, k, st, pd] of [
    [[2, 3, 8, 8], 2, 2, 0],
    [[3, 2, 10, 10], 2, 2, 0],
    [[2, 3, 28, 28], 2, 2, 0],
    [[1, 2, 7, 6], 2, 2, 0],
    [[2, 2, 7, 7], 3, 2, 1],
  ] as [number[], number, number, number][]
) {
  for (
    const [schedule, activation] of POOL_SCHEDULES.flatMap((sc) =>
      (["sigmoid", "relu"] as const).map((a) => [sc, a] as const)
    )
  ) {
    const d: PoolDims = dims(inShape, [k, k], [st, st], [pd, pd]);
    gpuTest(
      `maxPool2d + ${activation} vs float64 reference: inp [${inShape}] kernel ${k} (${schedule.name} schedule)`,
      async () => {
        const [OH, OW] = refPoolOutSize(d);
        const rng = new Rng(inShape.reduce((a, b) => a * 29 + b, k));
        const x = randArray(d.n * d.c * d.h * d.w, rng); // distinct values: no ties
        const dy = randArray(d.n * d.c * OH * OW, rng);
        const inp = Tensor.from(x, { shape: inShape, requiresGrad: true });
        const out = maxPool2d(inp, k, { stride: st, padding: pd, activation, schedule });
        out.backward(Tensor.from(dy, out.shape));
        const want = refMaxPool2dForward(x, d);
        const act = (v: number) =>
          activation === "sigmoid" ? 1 / (1 + Math.exp(-v)) : Math.max(v, 0);
        const y = want.out.map(act);
        const dz = y.map((v, i) => dy[i] * (activation === "sigmoid" ? v * (1 - v) : +(v > 0)));
        assertClose(await out.toArray(), y, { atol: 1e-6, rtol: 1e-6 }, "out");
        assertClose(await inp.grad!.toArray(), refMaxPool2dBackward(want.indices, dz, d), {
          atol: 1e-6,
          rtol: 1e-6,
        }, "dinp");
        const fused = schedule.pool2 && k === 2 && st === 2 && pd === 0 && d.w % 2 === 0;
        ok(
          out.gradFn?.op === (fused ? `maxPool2d+${activation}` : activation),
          `op ${out.gradFn?.op}`,
        );
      },
    );
  }
}

gpuTest("pooling's schedule: the adapter's by default, plain where nobody measured", () => {
  const measured = adapterProfile().measured;
  ok(poolSchedule().name === (measured === "llvmpipe" ? "llvmpipe" : "plain"));
  ok(poolSchedule({ ...adapterProfile(), measured: null }) === POOL_PLAIN);
});

gpuTest("pooling matches PyTorch: values, max indices (ties), gradients (fixture)", async () => {
  for (const f of fx.pool) {
    const d = dims(f.x_shape, f.kernel, f.stride, f.padding);
    const what = `${f.kind} pool kernel ${f.kernel} stride ${f.stride} padding ${f.padding}`;
    const inp = Tensor.from(f.x, { shape: f.x_shape, requiresGrad: true });
    const pool = f.kind === "max" ? maxPool2d : avgPool2d;
    const out = pool(inp, f.kernel as [number, number], { // a JSON import types pairs as number[]
      stride: f.stride as [number, number],
      padding: f.padding as [number, number],
    });
    ok(out.shape.join() === f.y_shape.join(), `${what}: shape ${out.shape}`);
    out.backward(Tensor.from(f.dy, f.y_shape));
    assertClose(await out.toArray(), f.y, { atol: 1e-6, rtol: 1e-6 }, `${what}: y`);
    assertClose(await inp.grad!.toArray(), f.dx, { atol: 1e-6, rtol: 1e-6 }, `${what}: dx`);
    // the reference's indices are PyTorch's (tie-breaking included)
    if (f.kind === "max") {
      assertClose(
        refMaxPool2dForward(f.x, d).indices,
        f.indices!,
        { atol: 0, rtol: 0 },
        `${what}: indices`,
      );
    }
  }
});

gpuTest("pooling errors name the bad shape and the fix", () => {
  const cases: [() => unknown, string][] = [
    [
      () => maxPool2d(Tensor.zeros([256, 120]), 2),
      "maxPool2d expects 4-D input [N, C, H, W], got [256, 120]",
    ],
    [
      () => avgPool2d(Tensor.zeros([1, 1, 4, 4]), 3, { padding: 2 }),
      "at most half the kernel size",
    ],
    [
      () => maxPool2d(Tensor.zeros([1, 1, 2, 2]), 3),
      "kernel 3x3 is larger than the padded input 2x2",
    ],
    [() => maxPool2d(Tensor.zeros([1, 1, 4, 4]), 2, { stride: 0 }), "stride must be"],
  ];
  for (const [fn, want] of cases) {
    let msg = "";
    try {
      fn();
    } catch (e) {
      msg = (e as Error).message;
    }
    ok(msg.includes(want), `expected an error containing "${want}", got "${msg}"`);
  }
});

gpuTest(
  "maxPool2d: a NaN in a window gives NaN, wherever it is in the window (as PyTorch)",
  async () => {
    // 1 x 1 x 2 x 4, 2x2 windows: NaN first in window 0, last in window 1.
    using x = Tensor.from([NaN, 1, 2, 3, 4, 5, 6, NaN], [1, 1, 2, 4]);
    using y = maxPool2d(x, 2);
    const got = await y.toArray();
    ok(Number.isNaN(got[0]) && Number.isNaN(got[1]), `max pool with NaN gave [${got}]`);
    // Width 6 is not whole vec4s (the pool2_flat kernel), with the NaN first and last.
    using x6 = Tensor.from([NaN, 1, 2, 3, 4, 5, 6, 7, 8, NaN, 9, 10], [1, 1, 2, 6]);
    using y6 = maxPool2d(x6, 2);
    const got6 = await y6.toArray();
    ok(
      Number.isNaN(got6[0]) && Number.isNaN(got6[1]) && got6[2] === 10,
      `max pool (pool2_flat kernel) with NaN gave [${got6}]`,
    );
    // Width 5 is odd: the general kernel, likewise.
    using x5 = Tensor.from([NaN, 1, 2, 3, 4, 5, 6, 7, NaN, 9], [1, 1, 2, 5]);
    using y5 = maxPool2d(x5, 2);
    const got5 = await y5.toArray();
    ok(
      Number.isNaN(got5[0]) && Number.isNaN(got5[1]),
      `max pool (general kernel) with NaN gave [${got5}]`,
    );
  },
);
