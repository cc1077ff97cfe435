/**
 * Sum and mean over any set of dimensions (`reduce.wgsl`), and `sumTo`, the reduction
 * that undoes broadcasting in gradients.
 *
 * @module
 */
import { grid, launch, Params } from "../../gpu/queue.ts";
import { record, Tensor } from "../../tensor/tensor.ts";
import { MAX_RANK, normDims, numel, type Shape, stridesOf } from "../../tensor/shape.ts";
import src from "./reduce.wgsl" with { type: "text" };

const WG = 64;
/** Elements one workgroup reduces at most: 4096 loop iterations per thread, far below llvmpipe's 65535 cap. */
const CHUNK = WG * 4096;

function reduceKernel(x: Tensor, dims: number[], scale: number): Tensor {
  const strides = stridesOf(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const outShape = kept.map((i) => x.shape[i]);
  const r = numel(dims.map((i) => x.shape[i]));
  const splits = Math.ceil(r / CHUNK) || 1;
  const nOut = numel(outShape);
  const out = Tensor.empty(splits > 1 ? [nOut, splits] : outShape);
  const params = new Params()
    .u32(nOut).u32(r).u32(kept.length).u32(dims.length)
    .f32(splits > 1 ? 1 : scale).u32(splits).u32(CHUNK).u32(0)
    .u32s(kept.map((i) => x.shape[i]), MAX_RANK, 1)
    .u32s(kept.map((i) => strides[i]), MAX_RANK)
    .u32s(dims.map((i) => x.shape[i]), MAX_RANK, 1)
    .u32s(dims.map((i) => strides[i]), MAX_RANK);
  launch({
    label: "reduce.sum",
    code: src,
    overrides: { WG },
    bindings: [params, x.buffer, out.buffer],
    workgroups: grid(nOut * splits),
  });
  if (splits === 1) return out;
  // Second stage: reduce the [nOut, splits] partials (contiguous) and apply the scale.
  const total = reduceKernel(out, [1], scale);
  out.dispose();
  const shaped = total.reshape(outShape);
  total.dispose();
  return shaped;
}

function reduce(
  x: Tensor,
  dims: number | readonly number[] | undefined,
  keepdim: boolean,
  isMean: boolean,
): Tensor {
  const d = normDims(dims, x.rank);
  const n = numel(d.map((i) => x.shape[i]));
  const keptShape = x.shape.map((s, i) => (d.includes(i) ? 1 : s));
  let out = reduceKernel(x, d, isMean ? 1 / n : 1);
  if (keepdim) {
    const flat = out;
    out = flat.reshape(keptShape);
    flat.dispose();
  }
  return record(out, isMean ? "mean" : "sum", [x], (g) => {
    const gk = g.reshape(keptShape);
    const e = gk.expand(x.shape);
    gk.dispose();
    if (!isMean) return [e];
    const m = e.mul(1 / n);
    e.dispose();
    return [m];
  });
}

/** Sum over `dims` (all if undefined), keeping them as size 1 when `keepdim`. */
export function sum(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  return reduce(x, dims, keepdim, false);
}

/** Mean over `dims` (all if undefined), keeping them as size 1 when `keepdim`. */
export function mean(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  return reduce(x, dims, keepdim, true);
}

/**
 * Sums `g` down to `shape`, undoing broadcasting: leading extra dims and dims where
 * `shape` has size 1 are summed. Returns a view of `g` when nothing needs summing.
 */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  const off = g.rank - shape.length;
  const dims = g.shape.map((_, i) => i).filter((i) =>
    i < off || (shape[i - off] === 1 && g.shape[i] !== 1)
  );
  if (dims.length === 0) return g.reshape(shape);
  const s = g.sum(dims);
  const out = s.reshape(shape);
  s.dispose();
  return out;
}
