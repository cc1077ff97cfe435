/**
 * Launcher of the reduction kernel (`reduce.wgsl`): sum (scaled, so also mean), max or
 * min over any set of dimensions. It takes GPU buffers and shapes; the differentiable
 * `Tensor` methods (`sum`, `mean`, `amax`, ...) call it and record their gradients.
 *
 * @module
 */
import { grid, launch, Params } from "../../gpu/queue.ts";
import { allocBuffer, releaseBuffer } from "../../gpu/buffer_pool.ts";
import { MAX_RANK, numel, type Shape, stridesOf } from "../../tensor/shape.ts";
import src from "./reduce.wgsl" with { type: "text" };

const WG = 64;
/** Elements one workgroup reduces at most: 4096 loop iterations per thread, far below llvmpipe's 65535 cap. */
const CHUNK = WG * 4096;
const OPS = { sum: 0, max: 1, min: 2 } as const;

/** What a reduction combines: a (scaled) sum, or the max or min. */
export type ReduceOp = keyof typeof OPS;

/**
 * Encodes `out = scale * OP over dims of inp` (`scale` applies to sums only) into `out`,
 * which holds the kept dimensions in order (`numel` of the kept sizes, f32). `dims` are
 * sorted, unique and in range.
 */
export function launchReduce(
  op: ReduceOp,
  inp: GPUBuffer,
  shape: Shape,
  dims: readonly number[],
  out: GPUBuffer,
  scale = 1,
): void {
  const strides = stridesOf(shape);
  const kept = shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const r = numel(dims.map((i) => shape[i]));
  const nOut = numel(kept.map((i) => shape[i]));
  const splits = Math.ceil(r / CHUNK) || 1;
  // A long reduction writes [nOut, splits] partials, then reduces those (contiguous).
  const partial = splits > 1 ? allocBuffer(nOut * splits * 4, "reduce partial") : out;
  const params = new Params()
    .u32(nOut).u32(r).u32(kept.length).u32(dims.length)
    .f32(splits > 1 ? 1 : scale).u32(splits).u32(CHUNK).u32(0)
    .u32s(kept.map((i) => shape[i]), MAX_RANK, 1)
    .u32s(kept.map((i) => strides[i]), MAX_RANK)
    .u32s(dims.map((i) => shape[i]), MAX_RANK, 1)
    .u32s(dims.map((i) => strides[i]), MAX_RANK);
  launch({
    label: `reduce.${op}`,
    code: src,
    overrides: { WG, OP: OPS[op] },
    bindings: [params, inp, partial],
    workgroups: grid(nOut * splits),
  });
  if (splits === 1) return;
  launchReduce(op, partial, [nOut, splits], [1], out, scale);
  releaseBuffer(partial); // safe without waiting: later commands only reuse it
}
