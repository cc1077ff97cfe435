/**
 * Launcher of the counter-based random generator (`random.wgsl`): uniform and standard
 * normal tensors made on the GPU, one launch, nothing uploaded. `Tensor.rand` and
 * `Tensor.randn` call it.
 *
 * @module
 */
import { grid, launch, uniforms } from "../../gpu/queue.ts";
import src from "./random.wgsl" with { type: "text" };

const WG = 256;

/** What {@link launchRandom} draws. */
export type Distribution =
  | { kind: "uniform"; low: number; high: number }
  | { kind: "normal" };

/** Encodes `n` samples of `dist` from `seed` (a u32) into `out`. */
export function launchRandom(dist: Distribution, seed: number, out: GPUBuffer, n: number): void {
  const normal = dist.kind === "normal";
  const [low, span] = normal ? [0, 1] : [dist.low, dist.high - dist.low];
  const threads = normal ? Math.ceil(n / 2) : n;
  launch({
    label: `random.${dist.kind}`,
    code: src,
    overrides: { WG, NORMAL: normal ? 1 : 0 },
    bindings: [uniforms({ n, seed: seed >>> 0, low, span }), out],
    workgroups: grid(Math.ceil(threads / WG)),
  });
}
