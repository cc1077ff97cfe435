/**
 * Elementwise ops (`binary.wgsl`, `unary.wgsl`) with broadcasting, and their gradients
 * written with the same ops (composites get their gradient from the tape).
 *
 * @module
 */
import { grid, launch, Params } from "../../gpu/queue.ts";
import { placeholder } from "../../gpu/placeholder.ts";
import { record, Tensor } from "../../tensor/tensor.ts";
import {
  broadcastShapes,
  broadcastStrides,
  fmt,
  MAX_RANK,
  numel,
  type Shape,
} from "../../tensor/shape.ts";
import { sumTo } from "../reduce/reduce.ts";
import binarySrc from "./binary.wgsl" with { type: "text" };
import unarySrc from "./unary.wgsl" with { type: "text" };

const WG = 256;
const BINARY = { add: 0, sub: 1, mul: 2, div: 3, pow: 4 } as const;
const UNARY = {
  copy: 0,
  add: 1,
  mul: 2,
  pow: 3,
  square: 4,
  sqrt: 5,
  exp: 6,
  log: 7,
  sigmoid: 8,
  relu: 9,
  step: 10,
  rsub: 11,
  fill: 12,
} as const;

/** Names of the binary ops. */
export type BinaryOp = keyof typeof BINARY;
/** Names of the unary ops; `add`, `mul`, `pow`, `rsub` and `fill` take a scalar `c`. */
export type UnaryOp = keyof typeof UNARY;

function shapeParams(p: Params, shape: Shape, ...strides: number[][]): Params {
  p.u32s(shape, MAX_RANK, 1);
  for (const s of strides) p.u32s(s, MAX_RANK, 0);
  return p;
}

/** Launches `unary.wgsl`: out = OP(x read through broadcast strides, c). No autograd. */
function unaryKernel(x: Tensor | undefined, op: UnaryOp, c: number, outShape: Shape): Tensor {
  const out = Tensor.empty(outShape);
  const broadcast = x !== undefined &&
    (x.shape.length !== outShape.length || x.shape.some((d, i) => d !== outShape[i]));
  const params = shapeParams(
    new Params().u32(out.size).u32(outShape.length).f32(c).u32(0),
    outShape,
    x ? broadcastStrides(x.shape, outShape) : [],
  );
  launch({
    label: `unary.${op}`,
    code: unarySrc,
    overrides: { OP: UNARY[op], BROADCAST: broadcast ? 1 : 0, WG },
    bindings: [params, x ? x.buffer : placeholder(), out.buffer],
    workgroups: grid(Math.ceil(out.size / WG)),
  });
  return out;
}

/** A new tensor of `shape` filled with `value`. */
export function fill(shape: Shape, value: number): Tensor {
  return unaryKernel(undefined, "fill", value, shape);
}

/** `x` broadcast to `shape` (a materialised copy), with gradient `sumTo`. */
export function expand(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes(x.shape, shape);
  if (target.length !== shape.length || target.some((d, i) => d !== shape[i])) {
    throw new Error(`expand: cannot broadcast ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  return record(unaryKernel(x, "copy", 0, shape), "expand", [x], (g) => [sumTo(g, x.shape)]);
}

/** Elementwise unary op with optional scalar `c`, recorded for autograd. */
export function unary(x: Tensor, op: UnaryOp, c = 0): Tensor {
  const out = unaryKernel(x, op, c, x.shape);
  return record(out, op, [x], (g) => {
    switch (op) {
      case "copy":
      case "add":
        return [g.detach()];
      case "mul":
        return [g.mul(c)];
      case "square":
        return [g.mul(x).mul(2)];
      case "pow": // c * x^(c-1)
        return [g.mul(x.pow(c - 1)).mul(c)];
      case "sqrt": // 1 / (2 sqrt(x))
        return [g.div(out).mul(0.5)];
      case "exp":
        return [g.mul(out)];
      case "log":
        return [g.div(x)];
      case "sigmoid": // s (1 - s)
        return [g.mul(out.mul(unary(out, "rsub", 1)))];
      case "relu":
        return [g.mul(unary(x, "step"))];
      case "rsub":
        return [g.mul(-1)];
      default:
        throw new Error(`unary op ${op} has no gradient`);
    }
  });
}

/** Elementwise binary op with broadcasting, recorded for autograd. */
export function binary(a: Tensor, b: Tensor, op: BinaryOp): Tensor {
  const shape = broadcastShapes(a.shape, b.shape);
  const out = Tensor.empty(shape);
  const same = (s: Shape) => s.length === shape.length && s.every((d, i) => d === shape[i]);
  const broadcast = !(same(a.shape) && same(b.shape));
  const params = shapeParams(
    new Params().u32(out.size).u32(shape.length).u32(0).u32(0),
    shape,
    broadcastStrides(a.shape, shape),
    broadcastStrides(b.shape, shape),
  );
  launch({
    label: `binary.${op}`,
    code: binarySrc,
    overrides: { OP: BINARY[op], BROADCAST: broadcast ? 1 : 0, WG },
    bindings: [params, a.buffer, b.buffer, out.buffer],
    workgroups: grid(Math.ceil(numel(shape) / WG)),
  });
  return record(out, op, [a, b], (g) => {
    switch (op) {
      case "add":
        return [sumTo(g, a.shape), sumTo(g, b.shape)];
      case "sub":
        return [sumTo(g, a.shape), sumTo(g.mul(-1), b.shape)];
      case "mul":
        return [sumTo(g.mul(b), a.shape), sumTo(g.mul(a), b.shape)];
      case "div": // d/da = 1/b, d/db = -a/b^2 = -out/b
        return [sumTo(g.div(b), a.shape), sumTo(g.mul(out).div(b).mul(-1), b.shape)];
      case "pow": // d/da = b a^(b-1), d/db = out ln(a)
        return [
          sumTo(g.mul(b).mul(a.pow(b.sub(1))), a.shape),
          b.requiresGrad ? sumTo(g.mul(out).mul(a.log()), b.shape) : null,
        ];
    }
  });
}
