/**
 * Launchers of the elementwise kernels (`binary.wgsl`, `unary.wgsl`), with broadcasting.
 * They take GPU buffers and shapes and write into a given output; the differentiable
 * `Tensor` methods (`add`, `mul`, `exp`, ...) call them and record their gradients.
 *
 * @module
 */
import { grid, launch, uniforms } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { broadcastStrides, MAX_RANK, numel, padTo, type Shape } from "../../tensor/shape.ts";
import binarySrc from "./binary.wgsl" with { type: "text" };
import unarySrc from "./unary.wgsl" with { type: "text" };

const WG = 256;
const BINARY = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, eq: 5 } as const;
const UNARY = {
  copy: 0,
  add: 1,
  mul: 2,
  pow: 3,
  square: 4,
  sqrt: 5,
  exp: 6,
  log: 7,
  abs: 8,
  sign: 9,
  fill: 10,
} as const;

/** Names of the binary ops. */
export type BinaryOp = keyof typeof BINARY;
/** Names of the unary ops; `add`, `mul`, `pow` and `fill` take the scalar `c`. */
export type UnaryOp = keyof typeof UNARY;

/** A GPU buffer read or written as a contiguous row-major tensor of `shape`. */
export interface Operand {
  readonly buffer: GPUBuffer;
  readonly shape: Shape;
}

function same(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Encodes `out = OP(x, c)` with `x` read through broadcast strides to `out.shape` (a
 * broadcasting copy with `"copy"`); `x` is null for `"fill"`.
 */
export function launchUnary(op: UnaryOp, c: number, x: Operand | null, out: Operand): void {
  const n = numel(out.shape);
  const params = uniforms({
    n,
    rank: out.shape.length,
    c,
    shape: padTo(out.shape, MAX_RANK, 1),
    sx: padTo(x ? broadcastStrides(x.shape, out.shape) : [], MAX_RANK, 0),
  });
  launch({
    label: `unary.${op}`,
    code: unarySrc,
    overrides: { OP: UNARY[op], BROADCAST: x && !same(x.shape, out.shape) ? 1 : 0, WG },
    bindings: [params, x ? x.buffer : placeholder(), out.buffer],
    workgroups: grid(Math.ceil(n / WG)),
  });
}

/**
 * Merges adjacent dimensions that every operand steps through alike (stride[d] equals
 * stride[d + 1] * size[d + 1] for each, which includes both being broadcast), and drops
 * size-1 dimensions: the same element order with as few dimensions as possible.
 */
export function coalesce(
  shape: Shape,
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const keep = shape.map((_, d) => d).filter((d) => shape[d] !== 1);
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (const d of keep) {
    const k = outShape.length - 1;
    const merge = k >= 0 &&
      strides.every((s, j) => outStrides[j][k] === s[d] * shape[d]);
    if (merge) {
      outShape[k] *= shape[d];
      strides.forEach((s, j) => (outStrides[j][k] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, j) => outStrides[j].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Encodes `out = a OP b`, both read through broadcast strides to `out.shape`. */
export function launchBinary(op: BinaryOp, a: Operand, b: Operand, out: Operand): void {
  const n = numel(out.shape);
  const merged = coalesce(out.shape, [
    broadcastStrides(a.shape, out.shape),
    broadcastStrides(b.shape, out.shape),
  ]);
  const [sa, sb] = merged.strides;
  const same = merged.shape.length <= 1 && (sa[0] ?? 1) === 1 && (sb[0] ?? 1) === 1;
  // Runs of up to 16 elements of a row per thread: the index divisions once per run.
  const row = merged.shape.at(-1) ?? 1;
  const step = same ? 1 : [16, 8, 4, 2, 1].find((k) => row % k === 0)!;
  const params = uniforms({
    n,
    rank: merged.shape.length,
    shape: padTo(merged.shape, MAX_RANK, 1),
    sa: padTo(sa, MAX_RANK, 0),
    sb: padTo(sb, MAX_RANK, 0),
  });
  launch({
    label: `binary.${op}`,
    code: binarySrc,
    overrides: { OP: BINARY[op], BROADCAST: same ? 0 : 1, ROW_STEP: step, WG },
    bindings: [params, a.buffer, b.buffer, out.buffer],
    workgroups: grid(Math.ceil(n / step / WG)),
  });
}
