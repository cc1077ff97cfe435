/**
 * The matrix products of `matmul.wgsl` and their schedules, on GPU buffers: the general
 * 4x4-tile products (`product`) and the uniform-chunk ones (`batchProduct`,
 * `weightGradProduct`), and the three products every caller needs, each taking the
 * schedule's fastest kernel for its sizes: C = A @ B^T (`productABt`, linear's forward),
 * C = A @ B (`productAB`, linear's input gradient) and C = A^T @ B (`productAtB`, its
 * weight gradient). `linear` and `Tensor.matmul` both call these; they take buffers, not
 * tensors, so the tensor module can use them.
 *
 * @module
 */
import { copyBuffer, grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
import { adapterProfile } from "../../gpu/device.ts";
import { choose, type Schedule } from "../../gpu/profile.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { UNIFORM_SCRATCH_FLOATS, uniformScratch } from "../../gpu/uniform_scratch.ts";
import src from "./matmul.wgsl" with { type: "text" };

/** Anything holding a GPU buffer of row-major f32 data (a `Tensor`). */
export interface Buffered {
  readonly buffer: GPUBuffer;
}

/**
 * A schedule of the linear layer's products: the workgroup of the general 4x4-tile
 * products, and from which batch the forward, input gradient and weight gradient take the
 * uniform-chunk kernels (`forward_batch`, `backward_inp_batch`, `weight_grad`) where the sizes
 * allow.
 */
export interface LinearSchedule extends Schedule {
  /**
   * Workgroup shape of the general products in threads, rows x columns (each thread computes
   * a 4x4 tile of the output). Outputs narrower than 4 * WG_P columns get a narrower,
   * taller workgroup with the same thread count.
   */
  readonly tile: { readonly WG_M: number; readonly WG_P: number };
  /**
   * The fewest rows (the batch: inp's rows) for which the forward and the input gradient run
   * the batch kernels (`forward_batch`, `backward_inp_batch`: the activations read as
   * uniforms, in chunks of whole rows); fewer take the general products.
   */
  readonly batchRows: number;
  /**
   * The fewest rows (the batch) for which the weight gradient runs `weight_grad` (dout in
   * uniform chunks); fewer take the general product.
   */
  readonly weightChunkRows: number;
}

/**
 * The plain schedule: the three general products, 4x4 tiles per thread in 8x8 workgroups
 * (the usual starting point on a GPU), each product reading its operands from storage.
 */
export const LINEAR_PLAIN: LinearSchedule = {
  name: "plain",
  adapters: [],
  measured: "",
  tile: { WG_M: 8, WG_P: 8 },
  batchRows: Infinity,
  weightChunkRows: Infinity,
};

/**
 * llvmpipe's schedule: from a batch of 8 rows (`batchRows`), the forward and the input
 * gradient by the batch kernels (the activations as uniforms in 64 KiB chunks of whole rows,
 * the weight from storage); at every batch (`weightChunkRows`) the weight gradient by
 * `weight_grad` (dout in uniform chunks); each where the sizes allow, the general products in
 * 4x16 workgroups elsewhere.
 */
export const LINEAR_LLVMPIPE: LinearSchedule = {
  name: "llvmpipe",
  adapters: ["llvmpipe"],
  measured: "llvmpipe: forward + backward 0.60-0.62x the plain schedule's time at [256, 256] x " +
    "[120, 256]^T, 0.63-0.69x at [256, 400] x [120, 400]^T, 0.69-0.75x at [256, 120] x " +
    "[84, 120]^T, 1.13x at [256, 84] x [10, 84]^T, where both run the general products " +
    "(bench/ops/schedules_bench.ts, 2-core AMD EPYC, medians of 7 interleaved rounds, two " +
    "runs on 2026-12-07); 4x16 workgroups beat 8x8, 16x4, 4x8, 16x16 and 2x32 by 10-40% at " +
    "LeNet's shapes (earlier)",
  tile: { WG_M: 4, WG_P: 16 },
  // The forward and the input gradient, batch kernels against the general 4x16 products and
  // (from 128) the `rows` kernel with its packs of the weight, which they replaced: device
  // time per launch (GPU timestamps, least of 20 interleaved rounds, AMD EPYC, 2 cores,
  // 2026-12-07), forward + input gradient. Against the general products: at [400 -> 120]
  // 501 against 681 us at batch 8, 593 against 867 at 32, 1077 against 1474 at 64; at
  // [256 -> 120] 385 against 574 at 32; at [120 -> 84] 224 against 313 at 32; but 375
  // against 298 at batch 2 and 342 against 365 at 4 ([400 -> 120]), 175 against 157 at
  // [2, 120 -> 84]. Against `rows` and its packs: at [400 -> 120] 1885 against 2946 at 128,
  // 3620 against 4509 at 256; at [256 -> 120] 2212 against 2653 at 256; at [120 -> 84] 911
  // against 1059 at 256.
  batchRows: 8,
  // The weight gradient alone, device time per launch (GPU timestamps, least of 30 rounds,
  // AMD EPYC, 2 cores, 2026-12-07): weight_grad + pack_dout against the general product's
  // 4x4 tiles, whose fixed cost grows with the output (dweight [O, I]), not the batch: at
  // [400 -> 120] 203 against 795 us at batch 2, 358 against 771 at 8, 607 against 1185 at
  // 32; at [256 -> 120] 150 against 679, 259 against 516, 507 against 1195; at [120 -> 84]
  // 112 against 261, 253 against 370, 237 against 315. So from the first row.
  weightChunkRows: 1,
};

/** Every linear schedule: the tests run each against the reference. */
export const LINEAR_SCHEDULES: readonly LinearSchedule[] = [LINEAR_PLAIN, LINEAR_LLVMPIPE];

/**
 * The schedule for the current adapter: llvmpipe's there, else the plain one.
 */
export function linearSchedule(profile = adapterProfile()): LinearSchedule {
  return choose(profile, LINEAR_PLAIN, LINEAR_LLVMPIPE);
}

/** The general products of `matmul.wgsl`. */
export type Entry = "forward" | "backward_inp" | "backward_weight";

/**
 * A fused activation in a product (matmul.wgsl's ACT and DACT): `code` (1 ReLU, 2 sigmoid,
 * {@link activationCode}'s) applied to the forward's output as it is stored, or, with
 * `saved` (that output), A (dout) read through its derivative by the backward products.
 */
export interface ProductActivation {
  /** 1 ReLU, 2 sigmoid. */
  code: 1 | 2;
  /** The forward's output, [M, K] as A is laid out (backward products only). */
  saved?: GPUBuffer;
}

/**
 * Launches one entry point of matmul.wgsl computing C [M, P] from A and B (see its header),
 * with `act` fused: the forward's activation, or the backward's dout through it.
 */
export function product(
  s: LinearSchedule,
  entry: Entry,
  a: Buffered,
  b: Buffered,
  c: Buffered,
  vec: GPUBuffer | null,
  M: number,
  K: number,
  P: number,
  alignA: boolean,
  alignB: boolean,
  act?: ProductActivation,
): void {
  if (act && (entry === "forward") === (act.saved !== undefined)) {
    throw new Error(
      `linear.${entry}: a fused activation needs the saved output in the backward products ` +
        `and none in the forward`,
    );
  }
  // Narrow outputs (P = 10 classes) would leave most of a 16-wide row of threads idle: give
  // the workgroup's threads to rows instead; and short ones (M = 2 examples) most of its rows:
  // give them to columns. Threads past the output compute (clamped) and do not store, so
  // they cost as much as the others. At most WG_M * WG_P threads.
  const { WG_M, WG_P } = s.tile;
  const pow2 = (v: number) => 2 ** Math.ceil(Math.log2(Math.max(1, v)));
  const threads = WG_M * WG_P;
  let wgP = Math.min(WG_P, pow2(Math.ceil(P / 4)));
  const wgM = Math.min(threads / wgP, pow2(Math.ceil(M / 4)));
  wgP = Math.min(threads / wgM, pow2(Math.ceil(P / 4)));
  const bindings: (GPUBuffer | Uniforms | null)[] = [
    uniforms({ m: M, k: K, p: P }),
    a.buffer,
    b.buffer,
    c.buffer,
    entry === "backward_inp" ? null : vec ?? placeholder(),
    act?.saved ?? placeholder(1),
  ];
  launch({
    label: `linear.${entry}@${s.name}`,
    code: src,
    entryPoint: entry,
    overrides: {
      WG_M: wgM,
      WG_P: wgP,
      ALIGN_A: alignA ? 1 : 0,
      ALIGN_B: alignB ? 1 : 0,
      HAS_BIAS: vec ? 1 : 0,
      ACT: entry === "forward" ? act?.code ?? 0 : 0,
      DACT: entry === "forward" ? 0 : act?.code ?? 0,
    },
    bindings,
    workgroups: [Math.ceil(P / (4 * wgP)), Math.ceil(M / (4 * wgM))],
  });
}

/**
 * dweight [O, I] = dout^T @ inp and dbias [O] (when given) by the `weight_grad` entry point,
 * dout read in uniform chunks of whole blocks of 8 outputs (with `act`, through the
 * activation's derivative as pack_dout copies it). Returns false, launching nothing, below
 * the schedule's {@link LinearSchedule.weightChunkRows}, when I is not a multiple of 4 or a
 * block of 8 outputs over N does not fit a chunk: the caller then uses `product`.
 */
export function weightGradProduct(
  s: LinearSchedule,
  dout: Buffered,
  inp: Buffered,
  dweight: Buffered,
  dbias: GPUBuffer | null,
  N: number,
  I: number,
  O: number,
  act?: ProductActivation,
): boolean {
  const perChunk = Math.floor(UNIFORM_SCRATCH_FLOATS / N / 8) * 8; // outputs per chunk, whole blocks
  if (N < s.weightChunkRows) return false;
  if (I % 4 !== 0 || perChunk < 8 || N === 0 || I === 0 || O === 0) return false;
  // A lane per vec4 of a row of inp.
  const { groups, lanes } = vectorLanes(I / 4);
  // Under 4 workgroups (the classifier's [10, 84]) the 4x4 tiles spread the work wider:
  // measured 1.3x faster there on llvmpipe.
  if (groups * Math.ceil(O / 8) < 4) return false;
  // Outputs per workgroup: 16 from batch 32, each inp load then feeding 64 multiply-adds
  // (weight_grad alone, GPU timestamps, least of 20 interleaved rounds, AMD EPYC, 2 cores,
  // 2026-12-07: 1479 against 1788 us at [256, 400 -> 120], 882 against 1179 at [256, 256 ->
  // 120], 240 against 269 at [32, 400 -> 120], 188 against 180 at [32, 256 -> 120]; but 137
  // against 124 at [8, 400 -> 120]).
  const ob = N >= 32 ? 16 : 8;
  for (let j = 0, oBase = 0; oBase < O; j++, oBase += perChunk) {
    const outs = Math.min(perChunk, O - oBase);
    const rp = uniforms({ m: N, k: I, p: O, p_base: oBase, rows_in_chunk: outs }, "RowsParams");
    const chunk = uniformScratch(j);
    launch({
      label: `linear.pack_dout@${s.name}`,
      code: src,
      entryPoint: "pack_dout",
      overrides: { DACT: act?.code ?? 0 },
      bindings: [rp, dout.buffer, chunk, null, null, act?.saved ?? placeholder(1)],
      workgroups: grid(Math.ceil((N * Math.ceil(outs / 8) * 8) / 64)),
    });
    launch({
      label: `linear.weight_grad@${s.name}`,
      code: src,
      entryPoint: "weight_grad",
      overrides: { RWG: lanes, HAS_BIAS: +(dbias !== null), OB: ob },
      bindings: [rp, inp.buffer, chunk, dweight.buffer, dbias ?? placeholder()],
      workgroups: [groups, Math.ceil(outs / ob)],
    });
  }
  return true;
}

/**
 * The forward (C [M, P] = A [M, K] @ weight [P, K]^T + bias, then `act.code`) or the input
 * gradient (C = A [M, K] @ weight [K, P], A read through the derivative of the activation
 * saved in `act.saved`) by `forward_batch` or `backward_inp_batch`: A, the activations, in
 * uniform chunks of whole rows, the weight from storage. Returns false, launching nothing,
 * outside the schedule's batch range or when K (for the input gradient P too) is not a
 * multiple of 4: the caller then uses another product.
 */
export function batchProduct(
  s: LinearSchedule,
  entry: "forward" | "backward_inp",
  a: Buffered,
  weight: Buffered,
  c: Buffered,
  bias: GPUBuffer | null,
  M: number,
  K: number,
  P: number,
  act?: ProductActivation,
): boolean {
  if (M < s.batchRows || K % 4 !== 0 || M === 0 || K === 0 || P === 0) return false;
  const forward = entry === "forward";
  if (!forward && P % 4 !== 0) return false;
  const perChunk = Math.floor(UNIFORM_SCRATCH_FLOATS / K / BATCH_RB) * BATCH_RB; // whole blocks
  if (perChunk < BATCH_RB) return false;
  // lanes over column quads (vectorLanes). Fewer than 8 quads leave most of a vector idle:
  // the classifier's forward ([N, 84] -> 10) took 1.2-1.5x the general product's time
  // (msPerCall, medians of 9 interleaved rounds: 0.366 against 0.247 ms at batch 256, 0.213
  // against 0.170 at 32; 0.182 against 0.150 at [32, 84] -> 16).
  const cols = Math.ceil(P / 4);
  if (cols < 8) return false;
  const { groups, lanes } = vectorLanes(cols);
  const saved = forward ? undefined : act?.saved;
  for (let j = 0, mBase = 0; mBase < M; j++, mBase += perChunk) {
    const rows = Math.min(perChunk, M - mBase);
    const bp = uniforms({ m: M, k: K, p: P, m_base: mBase, rows_in_chunk: rows }, "BatchParams");
    const chunk = uniformScratch(j);
    if (saved) {
      launch({
        label: `linear.pack_rows@${s.name}`,
        code: src,
        entryPoint: "pack_rows",
        overrides: { DACT: act!.code },
        bindings: [bp, a.buffer, chunk, null, null, saved],
        workgroups: grid(Math.ceil((rows * K) / 4 / 64)),
      });
    } else copyBuffer(a.buffer, chunk, rows * K * 4, mBase * K * 4);
    launch({
      label: `linear.${entry}_batch@${s.name}`,
      code: src,
      entryPoint: `${entry}_batch`,
      overrides: {
        RWG: lanes,
        HAS_BIAS: +(bias !== null),
        ACT: forward ? act?.code ?? 0 : 0,
      },
      bindings: [bp, weight.buffer, chunk, c.buffer, forward ? bias ?? placeholder() : null],
      workgroups: [groups, Math.ceil(rows / BATCH_RB)],
    });
  }
  return true;
}

/** Rows of the chunk per workgroup of the batch kernels (RB in matmul.wgsl). */
const BATCH_RB = 8;

/**
 * `count` lanes' work (vec4s of a row, column quads) in as few workgroups of at most 64
 * lanes as it takes, each a multiple of 8 lanes (llvmpipe's SIMD width): plain LeNet's
 * 100 vec4s of I = 400 in 2 x 56 lanes, not 2 x 64.
 */
function vectorLanes(count: number): { groups: number; lanes: number } {
  const groups = Math.ceil(count / 64);
  return { groups, lanes: Math.ceil(count / groups / 8) * 8 };
}

/**
 * C [M, P] = A [M, K] @ B^T (+ bias [P]), B given as [P, K] row-major (linear's forward:
 * out = inp @ weight^T + bias), then the activation `act` (1 ReLU, 2 sigmoid) if given.
 */
export function productABt(
  s: LinearSchedule,
  a: Buffered,
  b: Buffered,
  c: Buffered,
  bias: GPUBuffer | null,
  M: number,
  K: number,
  P: number,
  act: 0 | 1 | 2 = 0,
): void {
  const fused = act ? { code: act } : undefined;
  if (batchProduct(s, "forward", a, b, c, bias, M, K, P, fused)) return;
  const aligned = K % 4 === 0;
  product(s, "forward", a, b, c, bias, M, K, P, aligned, aligned, fused);
}

/**
 * C [M, P] = A [M, K] @ B [K, P], all row-major (linear's input gradient: dout @ weight);
 * with `act`, A read through the activation's derivative at its saved output.
 */
export function productAB(
  s: LinearSchedule,
  a: Buffered,
  b: Buffered,
  c: Buffered,
  M: number,
  K: number,
  P: number,
  act?: ProductActivation,
): void {
  if (batchProduct(s, "backward_inp", a, b, c, null, M, K, P, act)) return;
  product(s, "backward_inp", a, b, c, null, M, K, P, K % 4 === 0, P % 4 === 0, act);
}

/**
 * C [M, P] = A^T @ B with A [K, M] and B [K, P] row-major, and, when `colSums` is given, the
 * column sums of A into it ([M]; linear's weight and bias gradients: dout^T @ inp, sum of
 * dout's rows); with `act`, A read through the activation's derivative at its saved output.
 */
export function productAtB(
  s: LinearSchedule,
  a: Buffered,
  b: Buffered,
  c: Buffered,
  colSums: GPUBuffer | null,
  M: number,
  K: number,
  P: number,
  act?: ProductActivation,
): void {
  if (weightGradProduct(s, a, b, c, colSums, K, P, M, act)) return;
  product(s, "backward_weight", a, b, c, colSums, M, K, P, M % 4 === 0, P % 4 === 0, act);
}
