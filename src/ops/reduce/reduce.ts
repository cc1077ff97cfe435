/**
 * Launcher of the reduction kernel (`reduce.wgsl`): sum (scaled, so also mean), max or
 * min over any set of dimensions. It takes GPU buffers and shapes; the differentiable
 * `Tensor` methods (`sum`, `mean`, `amax`, ...) call it and record their gradients.
 *
 * @module
 */
import { grid, launch, uniforms } from "../../gpu/queue.ts";
import { allocBuffer, releaseBuffer } from "../../gpu/buffer_pool.ts";
import { MAX_RANK, numel, padTo, type Shape, stridesOf } from "../../tensor/shape.ts";
import src from "./reduce.wgsl" with { type: "text" };

const WG = 64;
/** Elements one workgroup reduces at most: 4096 loop iterations per thread, far below llvmpipe's 65535 cap. */
const CHUNK = WG * 4096;
/** A slice worth a workgroup of its own: 32 elements per thread. */
const MIN_CHUNK = WG * 32;
/**
 * Workgroups a reduction aims for, so that a few long reductions (a per-channel mean:
 * 6 outputs of 147,456 elements each) still keep every core (llvmpipe) or every
 * multiprocessor busy, instead of one workgroup per output.
 */
const TARGET_WORKGROUPS = 128;
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
  const kept = merged(shape, strides, shape.map((_, i) => i).filter((i) => !dims.includes(i)));
  const red = merged(shape, strides, dims);
  if (red.shape.length === 0) [red.shape, red.strides] = [[1], [0]]; // only size-1 dims: one element
  const r = numel(red.shape);
  const nOut = numel(kept.shape);
  // Enough slices per output to fill TARGET_WORKGROUPS, none shorter than MIN_CHUNK, none
  // longer than CHUNK.
  const splits = Math.max(
    Math.ceil(r / CHUNK),
    Math.min(Math.ceil(r / MIN_CHUNK), Math.ceil(TARGET_WORKGROUPS / Math.max(nOut, 1))),
    1,
  );
  const chunk = Math.ceil(r / splits);
  // A split reduction writes [nOut, splits] partials, then reduces those (contiguous).
  const partial = splits > 1 ? allocBuffer(nOut * splits * 4, "reduce partial") : out;
  const params = uniforms({
    n_out: nOut,
    r,
    kept_rank: kept.shape.length,
    red_rank: red.shape.length,
    scale: splits > 1 ? 1 : scale,
    splits,
    chunk,
    kept_shape: padTo(kept.shape, MAX_RANK, 1),
    kept_stride: padTo(kept.strides, MAX_RANK, 0),
    red_shape: padTo(red.shape, MAX_RANK, 1),
    red_stride: padTo(red.strides, MAX_RANK, 0),
  });
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

/**
 * The dimensions `ds` of a tensor of `shape` (row-major `strides`), enumerated in order,
 * with size-1 ones dropped and neighbours merged where one steps through memory as the
 * next continues it (`stride[a] === stride[b] * shape[b]`): reducing [N, C, H, W] over
 * [0, 2, 3] walks 2 dimensions (N, and H*W contiguous), which saves the kernel an integer
 * division and a remainder per element and dimension (scalar on llvmpipe).
 */
function merged(shape: Shape, strides: readonly number[], ds: readonly number[]) {
  const out = { shape: [] as number[], strides: [] as number[] };
  for (const d of ds) {
    if (shape[d] === 1) continue;
    const k = out.shape.length - 1;
    if (k >= 0 && out.strides[k] === strides[d] * shape[d]) {
      out.shape[k] *= shape[d];
      out.strides[k] = strides[d];
    } else {
      out.shape.push(shape[d]);
      out.strides.push(strides[d]);
    }
  }
  return out;
}
