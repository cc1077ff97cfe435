/**
 * The matrix products of `matmul.wgsl` and their schedules, on GPU buffers: the general
 * 4x4-tile products (`product`) and the uniform-chunk ones (`rowsProduct`,
 * `weightGradProduct`), and the three products every caller needs, each taking the
 * schedule's fastest kernel for its sizes: C = A @ B^T (`productABt`, linear's forward),
 * C = A @ B (`productAB`, linear's input gradient) and C = A^T @ B (`productAtB`, its
 * weight gradient). `linear` and `Tensor.matmul` both call these; they take buffers, not
 * tensors, so the tensor module can use them.
 *
 * @module
 */
import { grid, launch, type Uniforms, uniforms } from "../../gpu/queue.ts";
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
 * products, and whether the forward, input gradient and weight gradient use the
 * uniform-chunk kernels (`rows`, `weight_grad`) where the sizes allow.
 */
export interface LinearSchedule extends Schedule {
  /**
   * Workgroup shape of the general products in threads, rows x columns (each thread computes
   * a 4x4 tile of the output). Outputs narrower than 4 * WG_P columns get a narrower,
   * taller workgroup with the same thread count.
   */
  readonly tile: { readonly WG_M: number; readonly WG_P: number };
  /**
   * Rows of the output per lane of `rows` (R in matmul.wgsl: 1, 2 or 4), or 0: the general
   * products only (no uniform chunks).
   */
  readonly rowsPerLane: 0 | 1 | 2 | 4;
  /**
   * The fewest rows (the batch: inp's rows) for which the forward and the input gradient run
   * the uniform-chunk kernel `rows`; fewer take the general products.
   */
  readonly chunkRows: number;
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
  rowsPerLane: 0,
  chunkRows: Infinity,
  weightChunkRows: Infinity,
};

/**
 * llvmpipe's schedule: from a batch of 128 rows (`chunkRows`), the forward and the input
 * gradient by `rows` (the weight read as uniforms in 64 KiB chunks, 4 output rows per
 * lane); at every batch (`weightChunkRows`) the weight gradient by `weight_grad` (dout in
 * uniform chunks); each where the sizes allow, the general products in 4x16 workgroups
 * elsewhere.
 */
export const LINEAR_LLVMPIPE: LinearSchedule = {
  name: "llvmpipe",
  adapters: ["llvmpipe"],
  measured: "llvmpipe: forward + backward 0.71x the plain schedule's time at [256, 256] x " +
    "[120, 256]^T, 0.77x at [256, 400] x [120, 400]^T, 0.90x at [256, 120] x [84, 120]^T, " +
    "0.98x at [256, 84] x [10, 84]^T (bench/ops/schedules_bench.ts, 2-core AMD EPYC, medians of 9 interleaved rounds); 4x16 workgroups beat " +
    "8x8, 16x4, 4x8, 16x16 and 2x32 by 10-40% at LeNet's shapes",
  tile: { WG_M: 4, WG_P: 16 },
  rowsPerLane: 4,
  // Forward + backward, chunks against the general 4x16 products (AMD EPYC, 2 cores, medians
  // of 9 interleaved rounds, `rows` with as many lanes as rows): at batch 2 5.6x and 11x the
  // time at [2, 400] x [120] and [2, 120] x [84]; at 8 1.9x and 1.4x; at 32 1.04x and 1.38x;
  // at 64 0.95x and 1.10x; at 128 (7 rounds) 0.61x, 0.65x; at 256 0.57x, 0.61x. (Those
  // small-batch figures include weight_grad compiled anew at every dispatch by lavapipe, fixed
  // since; without it, on 2026-12-07, `rows` and its two packs still took longer than the
  // general forward and dinp at batch 32: 922 against 650 us at [256 -> 120].)
  chunkRows: 128,
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
  if (s.rowsPerLane === 0 || N < s.weightChunkRows) return false;
  if (I % 4 !== 0 || perChunk < 8 || N === 0 || I === 0 || O === 0) return false;
  // A lane per vec4 of a row of inp, in as few workgroups of at most 64 lanes as it takes,
  // each a multiple of 8 lanes (llvmpipe's SIMD width): plain LeNet's I = 400 (100 vec4s)
  // in 2 x 56 lanes, not 2 x 64.
  const groups = Math.ceil(I / 4 / 64);
  const lanes = Math.ceil(I / 4 / groups / 8) * 8;
  // Under 4 workgroups (the classifier's [10, 84]) the 4x4 tiles spread the work wider:
  // measured 1.3x faster there on llvmpipe.
  if (Math.ceil(I / 4 / lanes) * Math.ceil(O / 8) < 4) return false;
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
      overrides: { RWG: lanes, HAS_BIAS: +(dbias !== null) },
      bindings: [rp, inp.buffer, chunk, dweight.buffer, dbias ?? placeholder()],
      workgroups: [Math.ceil(I / 4 / lanes), Math.ceil(outs / 8)],
    });
  }
  return true;
}

/**
 * C [M, P] = A [M, K] @ BT^T (+ bias, then the activation `act`: 1 ReLU, 2 sigmoid) by the
 * `rows` entry point, BT [P, K] being `weight`
 * [P, K] itself or, with `transpose`, the transpose of `weight` [K, P]; BT is read in
 * uniform chunks of whole columns blocks. Returns false, launching nothing, when K is not a
 * multiple of 4 or a block of 8 columns does not fit a chunk: the caller then uses
 * `product`.
 */
export function rowsProduct(
  s: LinearSchedule,
  a: Buffered,
  weight: Buffered,
  transpose: boolean,
  c: Buffered,
  bias: GPUBuffer | null,
  M: number,
  K: number,
  P: number,
  act: 0 | 1 | 2 = 0,
): boolean {
  const perChunk = Math.floor(UNIFORM_SCRATCH_FLOATS / K / 8) * 8; // columns per chunk, whole blocks
  const r = s.rowsPerLane;
  if (!takesRows(s, M) || K % 4 !== 0 || perChunk < 8 || M === 0 || P === 0) return false;
  // lanes over rows, r each: as many as there are rows, in groups of 8 (llvmpipe's SIMD width)
  const rwg = Math.min(64, Math.max(8, Math.ceil(Math.ceil(M / r) / 8) * 8));
  for (let j = 0, pBase = 0; pBase < P; j++, pBase += perChunk) {
    const rowsInChunk = Math.min(perChunk, P - pBase);
    const rp = uniforms(
      { m: M, k: K, p: P, p_base: pBase, rows_in_chunk: rowsInChunk },
      "RowsParams",
    );
    const chunk = uniformScratch(j);
    launch({
      label: `linear.pack_chunk@${s.name}`,
      code: src,
      entryPoint: "pack_chunk",
      overrides: { TRANSPOSE: +transpose },
      bindings: [rp, weight.buffer, chunk],
      workgroups: [Math.ceil(K / 4 / 64), rowsInChunk],
    });
    launch({
      label: `linear.rows@${s.name}`,
      code: src,
      entryPoint: "rows",
      overrides: { R: r, RWG: rwg, HAS_BIAS: +(bias !== null), ACT: act },
      bindings: [rp, a.buffer, chunk, c.buffer, bias ?? placeholder()],
      workgroups: [Math.ceil(M / (r * rwg)), Math.ceil(rowsInChunk / 8)],
    });
  }
  return true;
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
  if (rowsProduct(s, a, b, false, c, bias, M, K, P, act)) return;
  const aligned = K % 4 === 0;
  const fused = act ? { code: act } : undefined;
  product(s, "forward", a, b, c, bias, M, K, P, aligned, aligned, fused);
}

/**
 * Whether the forward and the input gradient at `rows` rows (the batch) run the uniform-chunk
 * kernel `rows` where their sizes allow ({@link LinearSchedule.chunkRows}). It reads dout as
 * it is: a fused activation's derivative is then applied by a launch of its own (`act` of
 * {@link productAB} is for the general product).
 */
export function takesRows(s: LinearSchedule, rows: number): boolean {
  return s.rowsPerLane !== 0 && rows >= s.chunkRows;
}

/**
 * C [M, P] = A [M, K] @ B [K, P], all row-major (linear's input gradient: dout @ weight);
 * with `act`, A read through the activation's derivative at its saved output (the general
 * products only).
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
  if (!act && rowsProduct(s, a, b, true, c, null, M, K, P)) return;
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
