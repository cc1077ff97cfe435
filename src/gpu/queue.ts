/**
 * Batched command encoding: every kernel launch goes into one shared command encoder
 * (and one open compute pass) that is submitted only when a result is read back, or the
 * caller flushes. A host wait costs ~11 ms on llvmpipe in Deno, so bnlab never waits
 * inside a training step; it waits only in {@link readBuffer} and {@link sync}.
 *
 * Small per-launch parameters (sizes, strides, scalars) are packed into a uniform arena:
 * 256-byte aligned slots in a few large uniform buffers, written once per submit.
 *
 * @module
 */
import { deviceSync, errorsReported, recordError, throwIfErrors } from "./device.ts";
import { type Overrides, pipeline as getPipeline } from "./pipeline.ts";
import { bindGroup, bindGroupsCreated } from "./bind_groups.ts";
import { checkUniformBinding, packUniforms, structLayout, Uniforms } from "./uniforms.ts";

export { Uniforms, uniforms, type UniformValues } from "./uniforms.ts";

const SLOT = 256; // minUniformBufferOffsetAlignment's default
const CHUNK = 64 * 1024;
/** Submit automatically after this many launches, so a long loop without reads stays bounded. */
const AUTO_FLUSH = 2048;

let encoder: GPUCommandEncoder | undefined;
let pass: GPUComputePassEncoder | undefined;
let launches = 0;
const chunks: { buffer: GPUBuffer; data: Uint8Array<ArrayBuffer> }[] = [];
let chunkIndex = 0;
let chunkOffset = 0;
let submits = 0;

/**
 * Counters for tests and benchmarks: submits so far, launches encoded and not yet
 * submitted, and bind groups created so far (a launch that binds what an earlier one bound
 * reuses that one's).
 *
 * @example
 * ```ts
 * import { queueStats } from "./queue.ts";
 * const { submits, pendingLaunches, bindGroups } = queueStats();
 * console.log(submits, pendingLaunches, bindGroups);
 * ```
 */
export function queueStats(): { submits: number; pendingLaunches: number; bindGroups: number } {
  return { submits, pendingLaunches: launches, bindGroups: bindGroupsCreated() };
}

function getEncoder(): GPUCommandEncoder {
  encoder ??= deviceSync().createCommandEncoder({ label: "bnlab batch" });
  return encoder;
}

function getPass(): GPUComputePassEncoder {
  pass ??= getEncoder().beginComputePass({ label: "bnlab kernels" });
  return pass;
}

function endPass(): void {
  pass?.end();
  pass = undefined;
}

function uniformSlot(data: Uint8Array): GPUBufferBinding {
  if (chunkOffset + data.byteLength > CHUNK) {
    chunkIndex++;
    chunkOffset = 0;
  }
  if (chunkIndex === chunks.length) {
    chunks.push({
      buffer: deviceSync().createBuffer({
        label: `uniform arena ${chunkIndex}`,
        size: CHUNK,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      }),
      data: new Uint8Array(CHUNK),
    });
  }
  const c = chunks[chunkIndex];
  c.data.set(data, chunkOffset);
  const binding = { buffer: c.buffer, offset: chunkOffset, size: data.byteLength };
  chunkOffset += Math.ceil(data.byteLength / SLOT) * SLOT;
  return binding;
}

/** One kernel launch. */
export interface Launch {
  /** Label of the kernel (names its pipeline in errors). */
  label: string;
  /** The complete WGSL source. */
  code: string;
  /** Entry point in `code`; default `main` (a forward/backward pair can share one file). */
  entryPoint?: string;
  /** Values for the kernel's `override` constants. */
  overrides?: Overrides;
  /**
   * Bindings of group 0 in order: binding i is `bindings[i]`. {@link Uniforms} fill the
   * kernel's uniform struct at that binding, by field name (a slot of the uniform arena); a
   * GPUBuffer is bound whole.
   */
  bindings: (GPUBuffer | Uniforms)[];
  /** Workgroup counts; see {@link grid} for splitting large 1-D counts. */
  workgroups: [number, number?, number?];
}

/**
 * The bytes of `u` for binding `i` of `l`: the kernel must declare a uniform of `u`'s struct
 * there, and `u` must name each of its fields (see uniforms.ts); else an error naming the
 * kernel and entry point, thrown before anything is encoded.
 */
function uniformBytes(l: Launch, u: Uniforms, i: number): Uint8Array {
  const kernel = `${l.label} (entry point ${l.entryPoint ?? "main"})`;
  try {
    checkUniformBinding(l.code, i, u.struct);
  } catch (e) {
    throw new Error(`${kernel}: ${(e as Error).message}`);
  }
  return packUniforms(structLayout(l.code, u.struct), u.values, kernel);
}

/** Encodes one kernel launch into the shared encoder. Nothing is submitted. */
export function launch(l: Launch): void {
  const pipe = getPipeline(l.label, l.code, l.overrides, l.entryPoint);
  const bound = l.bindings.map((b, i) =>
    b instanceof Uniforms ? uniformSlot(uniformBytes(l, b, i)) : { buffer: b }
  );
  const p = getPass();
  p.setPipeline(pipe);
  p.setBindGroup(0, bindGroup(l.label, pipe, bound));
  const [x, y = 1, z = 1] = l.workgroups;
  if (x > 0 && y > 0 && z > 0) p.dispatchWorkgroups(x, y, z);
  if (++launches >= AUTO_FLUSH) flush();
}

/**
 * Splits `n` workgroups into an (x, y) grid within the 65535-per-dimension limit.
 * Kernels recover the linear index as `wid.x + wid.y * nwg.x` and skip ids >= n.
 */
export function grid(n: number): [number, number] {
  if (n <= 65535) return [Math.max(n, 1), 1];
  const y = Math.ceil(n / 65535);
  return [Math.ceil(n / y), y];
}

/** Encodes a buffer-to-buffer copy. */
export function copyBuffer(
  src: GPUBuffer,
  dst: GPUBuffer,
  bytes: number,
  srcOffset = 0,
  dstOffset = 0,
): void {
  endPass();
  getEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
}

/** Submits all encoded work. Cheap: it does not wait for the GPU. */
export function flush(): void {
  if (!encoder) return;
  endPass();
  const device = deviceSync();
  for (let i = 0; i <= chunkIndex && i < chunks.length; i++) {
    const used = i < chunkIndex ? CHUNK : chunkOffset;
    if (used) device.queue.writeBuffer(chunks[i].buffer, 0, chunks[i].data, 0, used);
  }
  device.pushErrorScope("validation");
  device.queue.submit([encoder.finish()]);
  device.popErrorScope().then((e) => {
    if (e) recordError(e.message);
  });
  encoder = undefined;
  launches = 0;
  chunkIndex = 0;
  chunkOffset = 0;
  submits++;
}

/** Submits pending work and waits for the GPU to finish it; throws on any WebGPU error. */
export async function sync(): Promise<void> {
  flush();
  await deviceSync().queue.onSubmittedWorkDone();
  await errorsReported();
  throwIfErrors();
}

const staging = new Map<number, GPUBuffer[]>();

/** Copies `bytes` bytes of `src` back to the host (flushes, then one host wait). */
export async function readBuffer(
  src: GPUBuffer,
  bytes: number,
  srcOffset = 0,
): Promise<ArrayBuffer> {
  const size = Math.ceil(bytes / 4) * 4;
  const list = staging.get(size);
  const dst = list?.pop() ?? deviceSync().createBuffer({
    label: `readback[${size}]`,
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  copyBuffer(src, dst, size, srcOffset);
  flush();
  try {
    await dst.mapAsync(GPUMapMode.READ);
  } catch (e) {
    throwIfErrors();
    throw e;
  }
  const out = dst.getMappedRange().slice(0, bytes);
  dst.unmap();
  if (list) list.push(dst);
  else staging.set(size, [dst]);
  throwIfErrors();
  return out;
}
