/**
 * TensorFlow.js as a benchmark peer: the operations of the comparison and the LeNet
 * training step written as a tfjs user would write them, on its `webgpu` backend (the same
 * WebGPU adapter as bnlab, a device of its own) or its `cpu` backend (plain JavaScript).
 *
 * Dev-only: nothing in `mod.ts` or `src/` imports this. The full `@tensorflow/tfjs` package
 * is needed (tfjs-core alone registers no gradients in Deno); the WebGPU backend is its
 * own package with the same version.
 *
 * tfjs is channels-last: images are NHWC and filters [KH, KW, C, O], and that is what each
 * op here gets; {@link toNhwc} and {@link toNchw} convert bnlab's NCHW data once, outside
 * any timing, and back for validation. Training-mode batch norm is `tf.moments` then
 * `tf.batchNorm` (tfjs has no fused training kernel; its `tf.layers.batchNormalization`
 * does the same) plus the running-statistic update; layer norm is `tf.moments` and four
 * elementwise ops (tfjs-core has no layer norm op; `tf.layers.layerNormalization` tiles
 * the statistics to the full input shape first, which only adds work).
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { WebGPUBackend } from "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";

export { tf };

/** The tfjs backends of the comparison. */
export type TfBackendName = "webgpu" | "cpu";

/** Makes `name` the active tfjs backend (creating it on first use). */
export async function useTfBackend(name: TfBackendName): Promise<void> {
  if (!(await tf.setBackend(name))) {
    throw new Error(`tfjs could not start its ${name} backend`);
  }
  await tf.ready();
}

/**
 * Waits until the active backend has finished all work handed to it. On WebGPU this is what
 * tfjs itself does before a readback (end the open compute pass, submit the batched
 * commands) followed by a wait for the queue: one host wait, as bnlab's `gpu.sync()`, with
 * no data copied. On the CPU backend the work is already done. Throws if the device
 * reported an error since the last wait (a failed dispatch would otherwise time as fast).
 */
export async function tfWait(): Promise<void> {
  const b = tf.backend();
  if (!(b instanceof WebGPUBackend)) return;
  watchErrors(b);
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  b.submitQueue();
  await b.device.queue.onSubmittedWorkDone();
  const errors = gpuErrors.get(b.device)!;
  if (errors.length) {
    const msg = errors.splice(0).slice(0, 3).join("; ");
    throw new Error(`tfjs webgpu: the device reported errors: ${msg}`);
  }
}

const gpuErrors = new WeakMap<GPUDevice, string[]>();

/** Collects the uncaptured errors of tfjs's device (tfjs itself does not look). */
function watchErrors(b: WebGPUBackend): void {
  if (gpuErrors.has(b.device)) return;
  const errors: string[] = [];
  gpuErrors.set(b.device, errors);
  b.device.addEventListener("uncapturederror", (e) => {
    errors.push((e as GPUUncapturedErrorEvent).error.message);
  });
}

/** How many tfjs kernels `fn` runs (each one dispatch or more on WebGPU), by `tf.profile`. */
export async function tfKernels(fn: () => void): Promise<number> {
  return (await tf.profile(() => void fn())).kernels.length;
}

/** The WebGPU adapter tfjs's backend runs on (its description), or null on the CPU. */
export function tfAdapter(): string | null {
  const b = tf.backend();
  if (!(b instanceof WebGPUBackend)) return null;
  const info = (b.device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return info?.description || info?.device || "unknown adapter";
}

/** NCHW data as NHWC (a copy); shapes of rank < 4 pass through. */
export function toNhwc(data: Float32Array, shape: readonly number[]): Float32Array {
  if (shape.length !== 4) return data;
  const [n, c, h, w] = shape;
  const out = new Float32Array(data.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      for (let s = 0; s < h * w; s++) out[(i * h * w + s) * c + k] = data[(i * c + k) * h * w + s];
    }
  }
  return out;
}

/** NHWC data back to NCHW; `shape` is the NCHW shape. */
export function toNchw(data: Float32Array, shape: readonly number[]): Float32Array {
  if (shape.length !== 4) return data;
  const [n, c, h, w] = shape;
  const out = new Float32Array(data.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      for (let s = 0; s < h * w; s++) out[(i * c + k) * h * w + s] = data[(i * h * w + s) * c + k];
    }
  }
  return out;
}

/** A PyTorch-layout conv filter [O, C, KH, KW] as tfjs's [KH, KW, C, O]. */
export function filterToTf(data: Float32Array, [o, c, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++) {
    for (let b = 0; b < c; b++) {
      for (let s = 0; s < kh * kw; s++) out[(s * c + b) * o + a] = data[(a * c + b) * kh * kw + s];
    }
  }
  return out;
}

/** tfjs's filter [KH, KW, C, O] back to [O, C, KH, KW]. */
export function filterFromTf(data: Float32Array, [o, c, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++) {
    for (let b = 0; b < c; b++) {
      for (let s = 0; s < kh * kw; s++) out[(a * c + b) * kh * kw + s] = data[(s * c + b) * o + a];
    }
  }
  return out;
}

/** NCHW shape -> NHWC shape (rank < 4 unchanged). */
export function nhwcShape(shape: readonly number[]): number[] {
  return shape.length === 4 ? [shape[0], shape[2], shape[3], shape[1]] : [...shape];
}

/**
 * Training-mode batch norm over every axis but the last (channels-last), with the running
 * statistics updated as PyTorch does (momentum 0.1, unbiased variance).
 */
export function batchNormTrain(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  runningMean: tf.Variable,
  runningVar: tf.Variable,
  { momentum = 0.1, eps = 1e-5 } = {},
): tf.Tensor {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const m = x.size / x.shape[x.rank - 1];
  const { mean, variance } = tf.moments(x, axes);
  tf.tidy(() => {
    runningMean.assign(runningMean.mul(1 - momentum).add(mean.mul(momentum)));
    runningVar.assign(runningVar.mul(1 - momentum).add(variance.mul(momentum * m / (m - 1))));
  });
  return tf.batchNorm(x, mean, variance, beta, gamma, eps);
}

/** Layer norm over the axes after the first (each example normalized on its own). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  const axes = x.shape.slice(1).map((_, i) => i + 1);
  const { mean, variance } = tf.moments(x, axes, true);
  return x.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(gamma).add(beta);
}

/** Conv2d, stride 1, no padding unless given, with bias: tfjs's fused op (as tf.layers uses). */
export function conv2d(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, pad = 0): tf.Tensor4D {
  return tf.fused.conv2d({
    x,
    filter,
    bias,
    strides: 1,
    pad: pad ? [[0, 0], [pad, pad], [pad, pad], [0, 0]] : "valid",
  });
}
