/**
 * Elementwise ops: a per-channel broadcast (`[N, C, H, W] * [1, C, 1, 1]`, what BN from
 * scratch and Noisy BN do every step) against the same-shape op on the same tensor, and
 * the copy kernel for the bandwidth the adapter has. Results are validated against the
 * float64 reference before timing; GB/s counts the bytes each op must move.
 *
 *     deno bench -A bench/ops/elementwise_bench.ts
 *
 * @module
 */
import { Tensor } from "../../src/tensor/tensor.ts";
import { getDevice } from "../../src/gpu/device.ts";
import { refArray, refBinary } from "../../src/ops/elementwise/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";

await getDevice();

const SHAPES: [string, number[], number[]][] = [
  ["[256, 6, 24, 24] * [1, 6, 1, 1]", [256, 6, 24, 24], [1, 6, 1, 1]],
  ["[256, 16, 8, 8] * [1, 16, 1, 1]", [256, 16, 8, 8], [1, 16, 1, 1]],
  ["[256, 120] * [1, 120]", [256, 120], [1, 120]],
  ["[7, 3, 5, 5] * [1, 3, 1, 1] (odd)", [7, 3, 5, 5], [1, 3, 1, 1]],
];

const rows: string[] = [];
for (const [name, shape, channel] of SHAPES) {
  const x = Tensor.randn(shape, { seed: 1 });
  const full = Tensor.randn(shape, { seed: 2 });
  const c = Tensor.randn(channel, { seed: 3 });
  // validate before timing
  const want = refBinary(
    "mul",
    refArray(await x.toArray(), shape),
    refArray(await c.toArray(), channel),
  );
  assertClose(await x.mul(c).toArray(), want.data, { atol: 1e-6, rtol: 1e-6 }, name);
  const bytes = 2 * x.numel * 4; // read x, write out (c is tiny; the same-shape op reads 3)
  const same = await msPerCall(() => x.mul(full).dispose(), { reps: 20 });
  const bcast = await msPerCall(() => x.mul(c).dispose(), { reps: 20 });
  rows.push(
    `${name.padEnd(36)} same-shape ${same.toFixed(3)} ms (${
      (1.5 * bytes / same / 1e6).toFixed(2)
    } GB/s)` +
      `  per-channel ${bcast.toFixed(3)} ms (${(bytes / bcast / 1e6).toFixed(2)} GB/s)` +
      `  ratio ${(bcast / same).toFixed(2)}x`,
  );
  Deno.bench({ name: "same shape", group: name, baseline: true, fn: () => x.mul(full).dispose() });
  Deno.bench({ name: "per-channel broadcast", group: name, fn: () => x.mul(c).dispose() });
}
console.log(rows.join("\n"));
