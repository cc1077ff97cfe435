/**
 * Layer normalization on the GPU: `layerNorm(inp, normalizedShape, weight, bias, eps)`
 * normalizes each example over its last dims (`layer_norm.wgsl`: a fused forward that
 * saves each row's mean and rstd, a fused backward for dinp, and a column-sum pass for
 * dweight and dbias).
 *
 * @module
 */
import { grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { MAX_LOOP } from "../../gpu/profile.ts";
import { checkTensor, record, Tensor } from "../../tensor/tensor.ts";
import { checkShape, fmt, numel } from "../../tensor/shape.ts";
import src from "./layer_norm.wgsl" with { type: "text" };

/**
 * How the forward and backward kernels spread rows over threads: `threadsPerRow` threads
 * share a row (each takes chunks of 4 elements, then a tree in workgroup memory adds their
 * partial sums), and a workgroup of `workgroupSize` threads holds
 * `workgroupSize / threadsPerRow` rows. Both are powers of two. Left undefined,
 * {@link layerNormLayout} gives the one schedule every adapter runs.
 */
export interface LayerNormTuning {
  threadsPerRow?: number;
  workgroupSize?: number;
}

/**
 * The kernels' layout for rows of `d` elements, or `tuning`'s. The schedule is plain: one
 * thread per row, as the float64 reference loops, 64 rows per workgroup; more threads per
 * row only where one thread's loop over the row's vec4s would pass {@link MAX_LOOP}. It is
 * the same on every adapter: on llvmpipe it was measured 2-5x faster than a workgroup per
 * row at the LeNet shapes (barriers cost more there than strided loads); on a GPU, where
 * threads sharing a row may win, nobody has measured.
 */
export function layerNormLayout(d: number, tuning: LayerNormTuning = {}): LayerNormLayout {
  let TPR = 1;
  while (TPR * MAX_LOOP < Math.ceil(d / 4)) TPR *= 2;
  TPR = tuning.threadsPerRow ?? TPR;
  const WG = tuning.workgroupSize ?? Math.max(TPR, 64);
  const pow2 = (v: number) => Number.isInteger(v) && v >= 1 && (v & (v - 1)) === 0;
  if (!pow2(TPR) || !pow2(WG) || TPR > WG) {
    throw new Error(
      `layerNorm tuning needs powers of two with threadsPerRow <= workgroupSize, got ${TPR} and ${WG}`,
    );
  }
  return { WG, TPR };
}

/** Threads per workgroup (WG) and per row (TPR) of the forward and backward kernels. */
export interface LayerNormLayout {
  WG: number;
  TPR: number;
}

/** Threads per workgroup of the dweight/dbias pass (one thread per 4 columns). */
const PARAMS_WG = 64;

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Rows of a layer norm: M rows of D elements, eps, and the kernels' layout. */
export interface Rows {
  M: number;
  D: number;
  eps: number;
  layout: LayerNormLayout;
}

function params(r: Rows, m0 = 0, m1 = r.M): Uniforms {
  return uniforms({ m: r.M, d: r.D, eps: r.eps, m0, m1 });
}

function rowGroups(r: Rows): [number, number] {
  return r.M ? grid(Math.ceil(r.M / (r.layout.WG / r.layout.TPR))) : [0, 1];
}

/** out, and each row's mean and rstd (the backward's cache), from inp (weight and bias together or null). */
export function launchLayerNormForward(
  r: Rows,
  inp: GPUBuffer,
  weight: GPUBuffer | null,
  bias: GPUBuffer | null,
  o: { out: GPUBuffer; mean: GPUBuffer; rstd: GPUBuffer },
): void {
  launch({
    label: "layer_norm.forward",
    code: src,
    entryPoint: "forward",
    overrides: { ...r.layout, ALIGN: +(r.D % 4 === 0), AFFINE: +(weight !== null) },
    bindings: [
      params(r),
      inp,
      weight ?? placeholder(0),
      bias ?? placeholder(1),
      o.out,
      o.mean,
      o.rstd,
    ],
    workgroups: rowGroups(r),
  });
}

/** dinp from dout and the saved statistics (weight null: no affine map). */
export function launchLayerNormBackward(
  r: Rows,
  inp: GPUBuffer,
  weight: GPUBuffer | null,
  dout: GPUBuffer,
  saved: { mean: GPUBuffer; rstd: GPUBuffer },
  dinp: GPUBuffer,
): void {
  launch({
    label: "layer_norm.backward",
    code: src,
    entryPoint: "backward",
    overrides: { ...r.layout, ALIGN: +(r.D % 4 === 0), AFFINE: +(weight !== null) },
    bindings: [params(r), inp, weight ?? placeholder(0), dout, saved.mean, saved.rstd, dinp],
    workgroups: rowGroups(r),
  });
}

/**
 * dweight and dbias (column sums over the rows), in dispatches of at most `rowsPerPass` rows
 * (default {@link MAX_LOOP}: one thread's loop) that add up.
 */
export function launchLayerNormParamsGrad(
  r: Rows,
  inp: GPUBuffer,
  dout: GPUBuffer,
  saved: { mean: GPUBuffer; rstd: GPUBuffer },
  g: { dweight: GPUBuffer; dbias: GPUBuffer },
  rowsPerPass = MAX_LOOP,
): void {
  // at least one pass: zero sums for an empty batch
  for (let m0 = 0; m0 === 0 || m0 < r.M; m0 += rowsPerPass) {
    launch({
      label: "layer_norm.backward_params",
      code: src,
      entryPoint: "backward_params",
      overrides: { WG: PARAMS_WG, TPR: 1, ALIGN: +(r.D % 4 === 0), ACCUMULATE: +(m0 > 0) },
      bindings: [
        params(r, m0, Math.min(r.M, m0 + rowsPerPass)),
        inp,
        g.dweight,
        dout,
        saved.mean,
        saved.rstd,
        g.dbias,
      ],
      workgroups: [Math.ceil(Math.ceil(r.D / 4) / PARAMS_WG)],
    });
  }
}

/** Options of {@link layerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance before its square root. Default 1e-5. */
  eps?: number;
  /** How the kernels spread rows over threads (benchmarks, tests); default the adapter's. */
  layout?: LayerNormLayout;
}

/**
 * Layer normalization (PyTorch's `F.layer_norm`): each example is normalized over its last
 * `normalizedShape.length` dims with its own mean and biased variance, then scaled and
 * shifted elementwise:
 *
 *   out = (inp - E[inp]) / sqrt(Var[inp] + eps) * weight + bias
 *
 * The statistics never mix examples, so the result does not depend on the batch, and
 * training and inference compute the same thing. Differentiable in inp, weight and bias.
 *
 * Shape: inp [*, ...normalizedShape], weight and bias normalizedShape or null (ones /
 * zeros) -> out like inp.
 *
 * Options (as `batchNorm`'s and `groupNorm`'s): `eps` (default 1e-5); `layout` (for
 * benchmarks and tests) fixes how the kernels spread rows over threads, by default the
 * adapter's choice, {@link layerNormLayout}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const x = Tensor.from([[1, 2, 3], [10, 20, 30]]);
 * const y = await F.layerNorm(x, [3], null, null, { eps: 0 }).toArray();
 * // Both rows become [-1.2247, 0, 1.2247] (= (x - mean) / std): a row's scale does not matter.
 * const want = [-Math.sqrt(1.5), 0, Math.sqrt(1.5)];
 * assert.ok(y.every((v, i) => Math.abs(v - want[i % 3]) < 1e-5));
 * ```
 */
export function layerNorm(
  inp: Tensor,
  normalizedShape: number | readonly number[],
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: LayerNormOptions = {},
): Tensor {
  checkTensor("layerNorm", "input", inp);
  checkTensor("layerNorm", "weight", weight, true);
  checkTensor("layerNorm", "bias", bias, true);
  const { eps = 1e-5, layout } = opts;
  const norm = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
  checkShape(norm, "layerNorm normalizedShape");
  if (norm.length === 0) {
    throw new Error("layerNorm expects a non-empty normalizedShape, got []");
  }
  if (inp.rank < norm.length || !same(inp.shape.slice(inp.rank - norm.length), norm)) {
    throw new Error(`layerNorm expects input ending in ${fmt(norm)}, got ${fmt(inp.shape)}`);
  }
  for (const [name, t] of [["weight", weight], ["bias", bias]] as const) {
    if (t && !same(t.shape, norm)) {
      throw new Error(
        `layerNorm expects ${name} of shape ${fmt(norm)} (the normalized shape), got ${
          fmt(t.shape)
        }`,
      );
    }
  }
  if (!(eps >= 0)) throw new Error(`layerNorm expects eps >= 0, got ${eps}`);

  const D = numel(norm);
  const M = numel(inp.shape.slice(0, inp.rank - norm.length));
  const affine = weight !== null || bias !== null;
  // The kernel takes weight and bias together; a lone one gets its neutral partner.
  const w = weight ?? (affine ? Tensor.ones(norm) : null);
  const b = bias ?? (affine ? Tensor.zeros(norm) : null);
  const rows: Rows = { M, D, eps, layout: layout ?? layerNormLayout(D) };
  const out = Tensor.empty(inp.shape);
  const mean = Tensor.empty([M]);
  const rstd = Tensor.empty([M]);
  launchLayerNormForward(rows, inp.buffer, w?.buffer ?? null, b?.buffer ?? null, {
    out: out.buffer,
    mean: mean.buffer,
    rstd: rstd.buffer,
  });
  if (w !== weight) w?.dispose();
  if (b !== bias) b?.dispose();

  const parents = [inp, weight, bias].filter((t): t is Tensor => t !== null);
  record(out, "layerNorm", parents, (dout) => {
    let dinp: Tensor | null = null;
    if (inp.requiresGrad) {
      dinp = Tensor.empty(inp.shape);
      // A lone bias means weight = ones: the same as no affine map for dinp.
      launchLayerNormBackward(rows, inp.buffer, weight?.buffer ?? null, dout.buffer, {
        mean: mean.buffer,
        rstd: rstd.buffer,
      }, dinp.buffer);
    }
    let dweight: Tensor | null = null;
    let dbias: Tensor | null = null;
    if (weight?.requiresGrad || bias?.requiresGrad) {
      dweight = Tensor.empty(norm);
      dbias = Tensor.empty(norm);
      launchLayerNormParamsGrad(rows, inp.buffer, dout.buffer, {
        mean: mean.buffer,
        rstd: rstd.buffer,
      }, { dweight: dweight.buffer, dbias: dbias.buffer });
    }
    const grads: (Tensor | null)[] = [dinp];
    if (weight) grads.push(dweight);
    else dweight?.dispose();
    if (bias) grads.push(dbias);
    else dbias?.dispose();
    return grads;
  }, [mean, rstd]);
  // The saved statistics live as long as the graph that needs them.
  if (!out.requiresGrad) {
    mean.dispose();
    rstd.dispose();
  }
  return out;
}
