import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { relu, sigmoid } from "../../src/nn/functional.ts";
import {
  refReluBackward,
  refReluForward,
  refSigmoidBackward,
  refSigmoidForward,
} from "../../src/ops/activation/reference.ts";
import { Rng } from "../../src/tensor/random.ts";
import { centralDiff } from "../central_diff.ts";

/** The gradient of sum(f(x) * dout) by central differences. */
function gradOf(f: (x: Float64Array) => Float64Array, x: Float64Array, dout: Float64Array) {
  return centralDiff(x, () => f(x).reduce((s, v, i) => s + v * dout[i], 0));
}

Deno.test("sigmoid and relu reference backwards match central differences", () => {
  const rng = new Rng(3);
  // keep relu inputs away from the kink at 0, where the difference quotient is undefined
  const x = Float64Array.from({ length: 11 }, () => {
    const v = rng.normal();
    return Math.abs(v) < 0.01 ? 0.5 : v;
  });
  const dout = Float64Array.from({ length: 11 }, () => rng.normal());
  assertClose(
    refSigmoidBackward(refSigmoidForward(x), dout),
    gradOf(refSigmoidForward, x, dout),
    { atol: 1e-8, rtol: 1e-6 },
    "sigmoid",
  );
  assertClose(
    refReluBackward(x, dout),
    gradOf(refReluForward, x, dout),
    { atol: 1e-8, rtol: 1e-6 },
    "relu",
  );
});

for (const shape of [[1], [3], [7, 7], [513], [256, 120], [2, 3, 5, 7]]) {
  gpuTest(
    `sigmoid and relu forward/backward vs float64 reference ${JSON.stringify(shape)}`,
    async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const rng = new Rng(n);
      const xs = Float32Array.from({ length: n }, () => 4 * rng.normal());
      if (n > 2) xs[1] = 0; // relu's gradient at exactly 0 is 0, as in PyTorch
      const ds = Float32Array.from({ length: n }, () => rng.normal());
      for (
        const [fn, fwd, bwd] of [
          [
            sigmoid,
            refSigmoidForward,
            (_x: Float32Array, o: Float64Array, d: Float32Array) => refSigmoidBackward(o, d),
          ],
          [
            relu,
            refReluForward,
            (x: Float32Array, _o: Float64Array, d: Float32Array) => refReluBackward(x, d),
          ],
        ] as const
      ) {
        const x = Tensor.from(xs, { shape: shape, requiresGrad: true });
        const y = fn(x);
        y.backward(Tensor.from(ds, shape));
        const want = fwd(xs);
        assertClose(await y.toArray(), want, { atol: 1e-6, rtol: 1e-6 }, `${fn.name} out`);
        assertClose(
          await x.grad!.toArray(),
          bwd(xs, want, ds),
          { atol: 1e-6, rtol: 1e-5 },
          `${fn.name} dinp`,
        );
      }
    },
  );
}
