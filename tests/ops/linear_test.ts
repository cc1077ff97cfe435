import { equal, ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  linear,
  LINEAR_LLVMPIPE,
  LINEAR_PLAIN,
  LINEAR_SCHEDULES,
  type LinearSchedule,
  linearSchedule,
} from "../../src/ops/linear/linear.ts";
import { adapterProfile } from "../../src/gpu/device.ts";
import { refLinearBackward, refLinearForward } from "../../src/ops/linear/reference.ts";
import {
  refReluBackward,
  refReluForward,
  refSigmoidBackward,
  refSigmoidForward,
} from "../../src/ops/activation/reference.ts";
import { Rng } from "../../src/tensor/random.ts";
import { centralDiff } from "../central_diff.ts";

function randArray(n: number, rng: Rng): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

Deno.test("linear reference backward matches central differences", () => {
  const [N, I, O] = [3, 5, 4];
  const rng = new Rng(1);
  const inp = randArray(N * I, rng), weight = randArray(O * I, rng), bias = randArray(O, rng);
  const dout = randArray(N * O, rng);
  // L = sum(out * dout), so dL/dx = the backward's gradient.
  const loss = () => {
    const out = refLinearForward(inp, weight, bias, N, I, O);
    return out.reduce((s, v, i) => s + v * dout[i], 0);
  };
  const g = refLinearBackward(inp, weight, dout, N, I, O);
  const h = 1e-6;
  for (const [x, dx] of [[inp, g.dinp], [weight, g.dweight], [bias, g.dbias]]) {
    const num = centralDiff(x, loss, h);
    assertClose(dx, num, { atol: 1e-7, rtol: 1e-7 }, "central differences");
  }
});

// Batch 1 and 3, primes, multiples of 4 (vec4 paths), the LeNet shapes.
const SHAPES: [number, number, number][] = [
  // LeNet's linear layers at batch 1, 2 and 3 (LeNet+BN's first takes 256 inputs, plain's 400)
  [1, 400, 120],
  [2, 256, 120],
  [3, 120, 84],
  [2, 84, 10],
  [1, 1, 1],
  [3, 7, 5],
  [1, 13, 10],
  [7, 8, 12],
  [5, 12, 3],
  [8, 9, 4],
  [3, 513, 7],
  [17, 31, 29],
  [33, 64, 40],
  [256, 256, 120],
  [256, 120, 84],
  [256, 84, 10],
  // the batch kernels: a last partial block of 8 rows, P not a multiple of 4 (the forward's
  // stores value by value; the input gradient then takes the general product), the smallest
  // batch llvmpipe gives them (the classifier's [N, 84] -> 10 above: too narrow for them)
  [45, 120, 84],
  [12, 84, 37],
  [8, 400, 120],
  // the uniform-chunk paths: several chunks (the forward at K 400: 40 rows each; the input
  // gradient at K 120: 136), a last partial chunk, P not a multiple of 4 or 8
  [300, 400, 120],
  [5, 2048, 20],
  [9, 1024, 13],
  [6, 40, 2052],
  // weight_grad's chunks of dout: 8 outputs over N = 2048 fill one (5 chunks); N = 2100 falls back
  [2048, 8, 40],
  [2100, 4, 3],
];

/** linear forward and backward on [N, I] x [O, I]^T against the float64 reference. */
async function check(
  N: number,
  I: number,
  O: number,
  withBias: boolean,
  schedule?: LinearSchedule,
) {
  const rng = new Rng(N * 1000 + I * 10 + O);
  const x = randArray(N * I, rng), w = randArray(O * I, rng), b = randArray(O, rng);
  const d = randArray(N * O, rng);
  const inp = Tensor.from(Float32Array.from(x), { shape: [N, I], requiresGrad: true });
  const weight = Tensor.from(Float32Array.from(w), { shape: [O, I], requiresGrad: true });
  const bias = withBias
    ? Tensor.from(Float32Array.from(b), { shape: [O], requiresGrad: true })
    : null;
  const out = linear(inp, weight, bias, { schedule });
  ok(out.shape.join() === `${N},${O}`, `output shape ${out.shape}`);
  out.backward(Tensor.from(Float32Array.from(d), [N, O]));
  // float32 dot products of length K: error ~ sqrt(K) * eps * |terms|
  const tol = (k: number) => ({ atol: 2e-6 * Math.sqrt(k) * 4, rtol: 1e-5 });
  const want = refLinearForward(
    Float32Array.from(x),
    Float32Array.from(w),
    withBias ? Float32Array.from(b) : null,
    N,
    I,
    O,
  );
  assertClose(await out.toArray(), want, tol(I), "out");
  const g = refLinearBackward(
    Float32Array.from(x),
    Float32Array.from(w),
    Float32Array.from(d),
    N,
    I,
    O,
  );
  assertClose(await inp.grad!.toArray(), g.dinp, tol(O), "dinp");
  assertClose(await weight.grad!.toArray(), g.dweight, tol(N), "dweight");
  if (bias) assertClose(await bias.grad!.toArray(), g.dbias, tol(N), "dbias");
}

/** llvmpipe's schedule with its uniform-chunk kernels at every batch size, not only from 8. */
const CHUNKS_ALWAYS: LinearSchedule = {
  ...LINEAR_LLVMPIPE,
  name: "llvmpipe-chunks",
  batchRows: 0,
  weightChunkRows: 0,
};

// Every shape under every schedule, whichever the adapter would pick.
for (const schedule of [...LINEAR_SCHEDULES, CHUNKS_ALWAYS]) {
  for (const [N, I, O] of SHAPES) {
    for (const withBias of [true, false]) {
      gpuTest(
        `linear forward/backward vs float64 reference [${N},${I}]x[${O},${I}]^T${
          withBias ? "+b" : ""
        } (${schedule.name} schedule)`,
        () => check(N, I, O, withBias, schedule),
      );
    }
  }
}

// The batch kernels ran where they should (a check that the shapes above reach them): at
// batch 8 the forward and the input gradient are theirs on llvmpipe's schedule, at 7 not.
gpuTest("linear on llvmpipe's schedule: the batch kernels from batch 8, not below", async () => {
  const { profileLaunches } = await import("../../src/gpu/queue.ts");
  const { tidy } = await import("../../src/tensor/tidy.ts");
  for (const [n, want] of [[8, true], [7, false]] as const) {
    const x = Tensor.rand([n, 32], { requiresGrad: true });
    const w = Tensor.rand([32, 32], { requiresGrad: true });
    const k = await profileLaunches(() =>
      tidy(() => linear(x, w, null, { schedule: LINEAR_LLVMPIPE }).backward(Tensor.rand([n, 32])))
    ).catch(() => null); // no timestamps on this adapter: nothing to check
    if (!k) return;
    const entries = k.map((e) => e.entryPoint);
    for (const e of ["forward_batch", "backward_inp_batch"]) {
      equal(entries.includes(e), want, `batch ${n}: ${e} in ${entries.join(", ")}`);
    }
  }
});

gpuTest("linear's schedule: the adapter's by default, plain where nobody measured", () => {
  const measured = adapterProfile().measured;
  ok(linearSchedule().name === (measured === "llvmpipe" ? "llvmpipe" : "plain"));
  ok(linearSchedule({ ...adapterProfile(), measured: null }) === LINEAR_PLAIN);
});

/**
 * linear with a fused activation against the float64 reference: the linear map, then the
 * activation; backward, dout through the activation's derivative at the float64 output,
 * then the linear's backward.
 */
async function checkActivation(
  N: number,
  I: number,
  O: number,
  activation: "sigmoid" | "relu",
  schedule: LinearSchedule,
) {
  const rng = new Rng(N * 7000 + I * 70 + O);
  const x = Float32Array.from(randArray(N * I, rng)), w = Float32Array.from(randArray(O * I, rng));
  const b = Float32Array.from(randArray(O, rng)), d = Float32Array.from(randArray(N * O, rng));
  const inp = Tensor.from(x, { shape: [N, I], requiresGrad: true });
  const weight = Tensor.from(w, { shape: [O, I], requiresGrad: true });
  const bias = Tensor.from(b, { shape: [O], requiresGrad: true });
  const out = linear(inp, weight, bias, { schedule, activation });
  equal(out.gradFn?.op, `linear+${activation}`);
  out.backward(Tensor.from(d, [N, O]));
  const pre = refLinearForward(x, w, b, N, I, O);
  const y = activation === "sigmoid" ? refSigmoidForward(pre) : refReluForward(pre);
  const dpre = activation === "sigmoid" ? refSigmoidBackward(y, d) : refReluBackward(pre, d);
  const g = refLinearBackward(x, w, dpre, N, I, O);
  const tol = (k: number) => ({ atol: 2e-6 * Math.sqrt(k) * 4, rtol: 1e-5 });
  const what = `[${N},${I}]x[${O},${I}]^T + ${activation} (${schedule.name})`;
  assertClose(await out.toArray(), y, tol(I), `${what}: out`);
  assertClose(await inp.grad!.toArray(), g.dinp, tol(O), `${what}: dinp`);
  assertClose(await weight.grad!.toArray(), g.dweight, tol(N), `${what}: dweight`);
  assertClose(await bias.grad!.toArray(), g.dbias, tol(N), `${what}: dbias`);
}

// The derivative is applied inside the general products (aligned and unaligned rows) and by
// the uniform-chunk kernels' packs (pack_rows, pack_dout); I = 0 too.
for (const schedule of [...LINEAR_SCHEDULES, CHUNKS_ALWAYS]) {
  for (const activation of ["sigmoid", "relu"] as const) {
    gpuTest(
      `linear + ${activation} fused, forward/backward vs float64 (${schedule.name})`,
      async () => {
        for (
          const [N, I, O] of [
            [2, 400, 120],
            [3, 120, 84],
            [5, 7, 13],
            [12, 400, 120],
            [130, 256, 120],
            [300, 120, 84],
            [4, 0, 3],
          ]
        ) {
          await checkActivation(N, I, O, activation, schedule);
        }
      },
    );
  }
}

gpuTest("linear refuses an unknown activation, naming it and the choices", () => {
  const x = Tensor.zeros([1, 2]), w = Tensor.zeros([3, 2]);
  throws(
    // @ts-expect-error: not an activation linear knows
    () => linear(x, w, null, { activation: "tanh" }),
    { message: 'linear: activation must be "sigmoid" or "relu", got "tanh"' },
  );
});
