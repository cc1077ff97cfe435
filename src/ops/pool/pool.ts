/**
 * 2-D max and average pooling on the GPU (`pool.wgsl`): `maxPool2d` and `avgPool2d`,
 * PyTorch's `F.max_pool2d` and `F.avg_pool2d`, with their backward. Max pooling saves the
 * index of each window's maximum for the backward.
 *
 * @module
 */
import { grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
import { adapterProfile } from "../../gpu/device.ts";
import { choose, type Schedule } from "../../gpu/profile.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { activationCode, type FusedActivation } from "../activation/activation.ts";
import { checkTensor, record, Tensor } from "../../tensor/tensor.ts";
import { fmt } from "../../tensor/shape.ts";
import { pair, slidingWindow, type Window } from "../window.ts";
import src from "./pool.wgsl" with { type: "text" };

const WG = 64;

/** Options of {@link maxPool2d} and {@link avgPool2d}: a number for both dimensions or [h, w]. */
export interface Pool2dOptions {
  /** Step between windows. Default: the kernel size (non-overlapping windows). */
  stride?: number | readonly [number, number];
  /** Implicit padding on both sides of H and W (-inf for max, 0 for avg). Default 0. */
  padding?: number | readonly [number, number];
  /** Which kernels run (tests, benchmarks); default {@link poolSchedule}'s. */
  schedule?: PoolSchedule;
}

/**
 * A schedule of the pooling kernels: whether 2x2 windows of stride 2 take the `pool2_*`
 * kernels (four windows per thread, the activation fused) instead of the general ones (one
 * output per thread).
 */
export interface PoolSchedule extends Schedule {
  readonly pool2: boolean;
}

/** The plain schedule: one thread per output (forward) or per input element (backward). */
export const POOL_PLAIN: PoolSchedule = { name: "plain", adapters: [], measured: "", pool2: false };

/** llvmpipe's schedule: the `pool2_*` kernels for 2x2 windows of stride 2. */
export const POOL_LLVMPIPE: PoolSchedule = {
  name: "llvmpipe",
  adapters: ["llvmpipe"],
  measured: "llvmpipe: sigmoid + max pool forward + backward 0.31x the plain schedule's " +
    "time at [256, 6, 24, 24], 0.39x at [256, 16, 10, 10] (bench/ops/schedules_bench.ts, 2-core AMD EPYC, medians of 9 interleaved rounds)",
  pool2: true,
};

/** Every pooling schedule: the tests run each against the reference. */
export const POOL_SCHEDULES: readonly PoolSchedule[] = [POOL_PLAIN, POOL_LLVMPIPE];

/**
 * The schedule for the current adapter: llvmpipe's there, else the plain one.
 */
export function poolSchedule(profile = adapterProfile()): PoolSchedule {
  return choose(profile, POOL_PLAIN, POOL_LLVMPIPE);
}

/** Options of {@link maxPool2d}: the window's, and an activation applied after pooling. */
export interface MaxPool2dOptions extends Pool2dOptions {
  /**
   * `"sigmoid"` or `"relu"` of each maximum, in the same kernels for 2x2 windows of stride
   * 2 (else as a second op): `maxPool2d(x, k, { activation: "sigmoid" })` is
   * `maxPool2d(x, k).sigmoid()`, which equals `maxPool2d(x.sigmoid(), k)` (both functions
   * are monotone) with the activation run on a quarter of the values each way.
   * `nn.Sequential` uses it for a Sigmoid or ReLU followed by a MaxPool2d.
   */
  activation?: FusedActivation;
}

/** A pooling's window over its input, and the schedule that runs it. */
interface Geometry extends Window {
  schedule: PoolSchedule;
}

function geometry(
  name: string,
  inp: Tensor,
  kernelSize: number | readonly [number, number],
  opts: Pool2dOptions,
): Geometry {
  const kernel = pair(kernelSize, `${name}: kernelSize`, 1);
  const stride = pair(opts.stride ?? kernel, `${name}: stride`, 1);
  const [ph, pw] = pair(opts.padding ?? 0, `${name}: padding`, 0);
  if (inp.rank !== 4) {
    throw new Error(`${name} expects 4-D input [N, C, H, W], got ${fmt(inp.shape)}`);
  }
  if (2 * ph > kernel[0] || 2 * pw > kernel[1]) {
    throw new Error(
      `${name}: padding [${ph}, ${pw}] must be at most half the kernel size [${kernel[0]}, ${
        kernel[1]
      }]`,
    );
  }
  const schedule = opts.schedule ?? poolSchedule();
  return { ...slidingWindow(name, inp.shape, kernel, stride, [ph, pw]), schedule };
}

function params(g: Geometry, total: number): Uniforms {
  const { h, w, oh, ow, kh, kw, sh, sw, ph, pw } = g;
  return uniforms({ h, w, oh, ow, kh, kw, sh, sw, ph, pw, total, outputs: g.n * g.c * oh * ow });
}

/**
 * dinp of a pooling: gathered per input element, or, when windows cannot overlap, written
 * window by window from the outputs (into zeros unless the windows tile the input).
 */
/**
 * Under a schedule that has them, 2x2 windows, stride 2, no padding, W even: the pool2_*
 * kernels ("pool2" when input rows are whole vec4s, else "pool2_flat"), or null for the
 * general ones. Measured on llvmpipe against the general kernels on plain LeNet's second
 * pool, [256, 16, 10, 10]: pool2_flat 0.33x the time forward, 0.39x forward + backward; on
 * [256, 6, 28, 28] (OW = 14) it was no faster than pool2 (1.1-1.2x, within the bias of that
 * run's order).
 */
function pool2(g: Geometry): string | null {
  if (!g.schedule.pool2) return null;
  if (g.kh !== 2 || g.kw !== 2 || g.sh !== 2 || g.sw !== 2 || g.ph !== 0 || g.pw !== 0) {
    return null;
  }
  if (g.w % 4 === 0) return "pool2";
  return g.w % 2 === 0 ? "pool2_flat" : null;
}

function runPool2(
  kernels: string,
  pass: "forward" | "backward",
  kind: "max" | "avg",
  g: Geometry,
  buffers: GPUBuffer[],
  act = 0,
  extra: Record<string, number> = {},
): void {
  const total = kernels === "pool2"
    ? g.n * g.c * g.oh * Math.ceil(g.ow / 4)
    : Math.ceil((g.n * g.c * g.oh * g.ow) / 4);
  // the output's sizes as constants: the kernels divide by them (see OW_C in pool.wgsl)
  const overrides: Record<string, number> = {
    WG,
    IS_MAX: +(kind === "max"),
    ACT: act,
    OW_C: g.ow,
    OH_C: g.oh,
    ...extra,
  };
  if (kernels === "pool2") overrides.OUT_ALIGNED = +(g.ow % 4 === 0);
  launch({
    label: `pool.${kernels}_${pass}@${g.schedule.name}`,
    code: src,
    entryPoint: `${kernels}_${pass}`,
    overrides,
    bindings: [params(g, total), ...buffers],
    workgroups: grid(Math.ceil(total / WG)),
  });
}

function forward(
  kind: "max" | "avg",
  g: Geometry,
  inp: Tensor,
  out: Tensor,
  idx?: Tensor,
  act = 0, // pool2 kernels only
): void {
  const kernels = pool2(g);
  if (kernels) {
    const b = [inp.buffer, out.buffer, idx?.buffer ?? placeholder()];
    if (kernels === "pool2") b.push(placeholder(1)); // norm_stats, read with NORM only
    runPool2(kernels, "forward", kind, g, b, act);
  } else {
    run(`${kind}_forward`, g, out.numel, [inp.buffer, out.buffer, ...(idx ? [idx.buffer] : [])]);
  }
}

function backward(
  kind: "max" | "avg",
  g: Geometry,
  inp: Tensor,
  dout: Tensor,
  idx?: Tensor,
  act = 0, // pool2 kernels only, with `pooled`, the forward's output
  pooled?: Tensor,
): Tensor {
  const kernels = pool2(g);
  if (kernels) {
    const dinp = g.h === 2 * g.oh ? Tensor.empty(inp.shape) : Tensor.zeros(inp.shape);
    const b = [
      dout.buffer,
      dinp.buffer,
      idx?.buffer ?? placeholder(),
      pooled?.buffer ?? placeholder(1),
    ];
    runPool2(kernels, "backward", kind, g, b, act);
    return dinp;
  }
  if (g.sh >= g.kh && g.sw >= g.kw) {
    const tiles = g.sh === g.kh && g.sw === g.kw && g.ph === 0 && g.pw === 0 &&
      g.h === g.oh * g.kh && g.w === g.ow * g.kw;
    const dinp = tiles ? Tensor.empty(inp.shape) : Tensor.zeros(inp.shape);
    // one shader function serves both kinds, so avg binds a placeholder for idx
    const b = [
      dout.buffer,
      dinp.buffer,
      idx?.buffer ?? placeholder(),
    ];
    run(`${kind}_backward_disjoint`, g, dout.numel, b);
    return dinp;
  }
  const dinp = Tensor.empty(inp.shape);
  run(`${kind}_backward`, g, dinp.numel, [dout.buffer, dinp.buffer, ...(idx ? [idx.buffer] : [])]);
  return dinp;
}

function run(entry: string, g: Geometry, total: number, buffers: GPUBuffer[]): void {
  launch({
    label: `pool.${entry}@${g.schedule.name}`,
    code: src,
    entryPoint: entry,
    overrides: { WG },
    bindings: [params(g, total), ...buffers],
    workgroups: grid(Math.ceil(total / WG)),
  });
}

/**
 * 2-D max pooling, as PyTorch's `F.max_pool2d(input, kernel_size, stride, padding)`:
 *
 *     out[n, c, y, x] = max_{ky < kh, kx < kw} inp[n, c, y sh - ph + ky, x sw - pw + kx]
 *
 * over the window positions inside the input (padding never wins). The backward sends
 * each dout to its window's maximum: the first one in row-major window order on ties,
 * as PyTorch does.
 *
 * Shape: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 ph - kh) / sh) + 1 (likewise OW).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const x = Tensor.from([1, 5, 2, 0, 3, 4, 9, 8, 7, 6, 1, 2, 0, 0, 3, 3], {
 *   shape: [1, 1, 4, 4],
 *   requiresGrad: true,
 * });
 * const y = F.maxPool2d(x, 2);
 * assert.deepEqual(Array.from(await y.toArray()), [5, 9, 7, 3]);
 * y.sum().backward();
 * // the 3s tie: the first (row-major) gets the gradient
 * assert.deepEqual(
 *   Array.from(await x.grad!.toArray()),
 *   [0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0],
 * );
 * ```
 */
export function maxPool2d(
  inp: Tensor,
  kernelSize: number | readonly [number, number],
  opts: MaxPool2dOptions = {},
): Tensor {
  checkTensor("maxPool2d", "input", inp);
  const { activation, ...window } = opts;
  window.schedule ??= poolSchedule(); // the same one for the two ops below
  const act = activationCode("maxPool2d", activation);
  const g = geometry("maxPool2d", inp, kernelSize, window);
  if (activation && !pool2(g)) { // no fused kernel for this window: the two ops
    const pooled = maxPool2d(inp, kernelSize, window);
    return activation === "sigmoid" ? pooled.sigmoid() : pooled.relu();
  }
  const out = Tensor.empty([g.n, g.c, g.oh, g.ow]);
  const idx = Tensor.empty(out.shape); // u32 positions, the backward's cache
  forward("max", g, inp, out, idx, act);
  const op = activation ? `maxPool2d+${activation}` : "maxPool2d";
  const res = record(out, op, [inp], (dout) => [backward("max", g, inp, dout, idx, act, out)], [
    idx,
  ]);
  if (!res.requiresGrad) idx.dispose(); // else the backward's cache, held by the graph
  return res;
}

/**
 * Whether {@link normalizedMaxPool2d} has a kernel for input `shape` on `schedule`: 2x2
 * windows of stride 2 over [N, C, H, W] with W a multiple of 4, on a schedule with the
 * `pool2` kernels.
 */
export function takesNormalizedPool(
  shape: readonly number[],
  schedule: PoolSchedule = poolSchedule(),
): boolean {
  if (shape.length !== 4 || shape[2] < 2 || shape[3] < 2) return false; // maxPool2d's to refuse
  const g = { ...slidingWindow("maxPool2d", shape, [2, 2], [2, 2], [0, 0]), schedule };
  return pool2(g) === "pool2";
}

/**
 * 2x2 max pooling of stride 2 of `act((inp - mean) * scale + bias)`, the normalization per
 * channel from `stats` ([C] vec4s (mean, rstd, scale, bias): batch_norm's cache), in one
 * pass that never stores the normalized values (batch norm, its activation and the max pool
 * fused; batch_norm.ts runs it). Returns the pooled output, the winners' indices and `grad`,
 * which maps the output's gradient to the normalized values' (the activation's derivative
 * included). Only where {@link takesNormalizedPool} holds (else throws).
 */
export function normalizedMaxPool2d(
  inp: Tensor,
  stats: GPUBuffer,
  activation: FusedActivation | undefined,
  schedule: PoolSchedule = poolSchedule(),
): { out: Tensor; idx: Tensor; grad: (dout: Tensor) => Tensor } {
  if (!takesNormalizedPool(inp.shape, schedule)) {
    throw new Error(
      `normalizedMaxPool2d: no kernel for input ${fmt(inp.shape)} on the ${schedule.name} ` +
        `schedule (it needs [N, C, H, W] with W a multiple of 4, on a schedule with pool2)`,
    );
  }
  const act = activationCode("maxPool2d", activation);
  const g = geometry("maxPool2d", inp, 2, { schedule });
  const out = Tensor.empty([g.n, g.c, g.oh, g.ow]);
  const idx = Tensor.empty(out.shape);
  runPool2("pool2", "forward", "max", g, [inp.buffer, out.buffer, idx.buffer, stats], act, {
    NORM: 1,
    NORM_C: g.c,
  });
  return { out, idx, grad: (dout) => backward("max", g, inp, dout, idx, act, out) };
}

/**
 * 2-D average pooling, as PyTorch's `F.avg_pool2d(input, kernel_size, stride, padding)`
 * with its defaults (`count_include_pad=True`, `ceil_mode=False`):
 *
 *     out[n, c, y, x] = (1 / (kh kw)) sum_{ky < kh, kx < kw} inp[n, c, y sh - ph + ky, x sw - pw + kx]
 *
 * with the padding read as zeros.
 *
 * Shape: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 ph - kh) / sh) + 1 (likewise OW).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { F, Tensor } from "../../../mod.ts";
 * const x = Tensor.from([1, 2, 3, 4], { shape: [1, 1, 2, 2], requiresGrad: true });
 * const y = F.avgPool2d(x, 2);
 * assert.deepEqual(Array.from(await y.toArray()), [2.5]);
 * y.sum().backward();
 * assert.deepEqual(Array.from(await x.grad!.toArray()), [0.25, 0.25, 0.25, 0.25]);
 * ```
 */
export function avgPool2d(
  inp: Tensor,
  kernelSize: number | readonly [number, number],
  opts: Pool2dOptions = {},
): Tensor {
  checkTensor("avgPool2d", "input", inp);
  const g = geometry("avgPool2d", inp, kernelSize, opts);
  const out = Tensor.empty([g.n, g.c, g.oh, g.ow]);
  forward("avg", g, inp, out);
  return record(out, "avgPool2d", [inp], (dout) => [backward("avg", g, inp, dout)]);
}
