/**
 * Anomaly mode, as PyTorch's `torch.autograd.detect_anomaly`: while it is on, every op's
 * output (forward, and each gradient a backward makes) is checked on the GPU for values that
 * are not finite, and the next host read of anything (`toArray`, `item`, a training loop's
 * reading) throws an {@link AnomalyError} naming the first op, in the order they ran, whose
 * output held one. Off by default: it costs a small kernel per op.
 *
 * No host wait of its own: the checks write into one GPU word (the earliest op's sequence
 * number, `src/ops/finite/finite.wgsl`) that rides along with the next read.
 *
 * @module
 */
import { deviceSync } from "../gpu/device.ts";
import { addReadCheck, grid, launch, uniforms } from "../gpu/queue.ts";
import src from "../ops/finite/finite.wgsl" with { type: "text" };

/** The first op whose output was not finite, in anomaly mode. */
export class AnomalyError extends Error {
  /** The op, e.g. `log` or `mul (in the backward of sigmoid)`. */
  readonly op: string;
  /** The op and its output's shape in the message. */
  constructor(op: string, shape: readonly number[]) {
    super(
      `detectAnomaly: the first op whose output is not finite (NaN or infinite) is ${op}, ` +
        `output [${shape.join(", ")}]; look at its inputs (or turn anomaly mode off)`,
    );
    this.name = "AnomalyError";
    this.op = op;
  }
}

const NONE = 0xffffffff;
let on = false;
let context: string | undefined;
/** The ops checked and not yet known finite, by sequence number. */
const ops = new Map<number, { op: string; shape: readonly number[] }>();
let next = 0;
let flag: GPUBuffer | undefined;

function reset(): void {
  deviceSync().queue.writeBuffer(flag!, 0, new Uint32Array([NONE]));
  ops.clear();
}

/** Whether anomaly mode is on. */
export function isAnomalyEnabled(): boolean {
  return on;
}

/**
 * Turns anomaly mode on or off (see the module doc).
 *
 * @example
 * ```ts
 * import { setDetectAnomaly, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * setDetectAnomaly(true);
 * const x = Tensor.from([1, 1e10, 2]);
 * const y = x.mul(1e30).add(1); // 1e40 overflows float32: mul is the first op not finite
 * await assert.rejects(y.toArray(), /the first op whose output is not finite .* is mul/);
 * setDetectAnomaly(false);
 * ```
 */
export function setDetectAnomaly(enabled: boolean): void {
  if (enabled && !flag) {
    flag = deviceSync().createBuffer({
      label: "anomaly first op",
      size: 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    reset();
    addReadCheck(flag, 4, (bytes, upTo) => {
      const seq = new Uint32Array(bytes)[0];
      const found = ops.get(seq);
      if (!found) { // all finite: forget the ops this read covered
        for (const k of ops.keys()) if (k < upTo) ops.delete(k);
        return;
      }
      reset();
      throw new AnomalyError(found.op, found.shape);
    }, () => next);
  }
  if (enabled && !on) reset();
  on = enabled;
}

/** Runs `fn` with the ops it makes named as made in `label` (a backward closure). */
export function inContext<T>(label: string, fn: () => T): T {
  if (!on) return fn();
  const prev = context;
  context = label;
  try {
    return fn();
  } finally {
    context = prev;
  }
}

/** In anomaly mode, checks an op's output on the GPU (see the module doc). */
export function checkFinite(
  op: string,
  out: { buffer: GPUBuffer; numel: number; shape: readonly number[] },
): void {
  if (!on || out.numel === 0) return;
  const seq = next++;
  ops.set(seq, { op: context ? `${op} (in ${context})` : op, shape: out.shape });
  launch({
    label: "finite.check",
    code: src,
    bindings: [uniforms({ n: out.numel, seq }), out.buffer, flag!],
    workgroups: grid(Math.ceil(out.numel / 256)),
  });
}
