/**
 * Reductions as the lecture's from-scratch batch norm uses them: the per-channel mean of a
 * convolution's output (`x.mean([0, 2, 3], true)`: 6 outputs of 147,456 values), the
 * per-feature mean of a linear layer's output (`x.mean(0)`), a full sum, and `sumTo`
 * (a broadcast operand's gradient), beside a same-shape elementwise op on the same tensor,
 * which reads at least as many bytes: a reduction should cost no more than that.
 * Results are validated against the float64 reference before timing.
 *
 *     deno bench -A bench/ops/reduce_bench.ts
 *
 * @module
 */
import { Tensor } from "../../src/tensor/tensor.ts";
import { getDevice } from "../../src/gpu/device.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import { refMean } from "../../src/ops/reduce/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";

await getDevice();

const CASES: [string, number[], number[]][] = [
  ["per-channel mean [256, 6, 24, 24]", [256, 6, 24, 24], [0, 2, 3]],
  ["per-channel mean [256, 16, 8, 8]", [256, 16, 8, 8], [0, 2, 3]],
  ["per-feature mean [256, 120]", [256, 120], [0]],
  ["mean of all [256, 6, 24, 24]", [256, 6, 24, 24], [0, 1, 2, 3]],
];

const rows: string[] = [];
for (const [name, shape, dims] of CASES) {
  const x = Tensor.randn(shape, { seed: 1 });
  const other = Tensor.randn(shape, { seed: 2 });
  const want = refMean(refArray(await x.toArray(), shape), dims, true);
  assertClose(await x.mean(dims, true).toArray(), want.data, { atol: 1e-6, rtol: 1e-5 }, name);
  const bytes = x.numel * 4;
  const reduce = await msPerCall(() => x.mean(dims, true).dispose(), { reps: 20 });
  const same = await msPerCall(() => x.mul(other).dispose(), { reps: 20 });
  rows.push(
    `${name.padEnd(36)} reduce ${reduce.toFixed(3)} ms (${
      (bytes / reduce / 1e6).toFixed(2)
    } GB/s read)` +
      `  same-shape mul ${same.toFixed(3)} ms  reduce / mul ${(reduce / same).toFixed(2)}x`,
  );
  Deno.bench({
    name: "same-shape mul",
    group: name,
    baseline: true,
    fn: () => x.mul(other).dispose(),
  });
  Deno.bench({ name: "mean", group: name, fn: () => x.mean(dims, true).dispose() });
}
console.log(rows.join("\n"));
