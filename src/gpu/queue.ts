/**
 * Batched command encoding: every kernel launch goes into one shared command encoder
 * (and one open compute pass) that is submitted only when a result is read back, or the
 * caller flushes. A host wait costs ~11 ms on llvmpipe in Deno, so bnlab never waits
 * inside a training step; it waits only in {@link readBuffer} and {@link sync}.
 * {@link profileLaunches} times each launch of a function on the device: while it runs the
 * function, each launch gets a compute pass of its own, timestamped at its start and end.
 *
 * Small per-launch parameters (sizes, strides, scalars) are packed into a uniform arena:
 * 256-byte aligned slots in a few large uniform buffers, written once per submit.
 *
 * An interrupted notebook cell (Jupyter's Kernel > Interrupt, which Deno's kernel turns into
 * V8's TerminateExecution) stops JavaScript between any two statements, `finally` blocks
 * skipped: possibly halfway through a launch or a submit, with the pass ended but still
 * referenced, or the encoder finished but not submitted. Every entry point that changes the
 * encoder therefore marks itself as {@link encoding} until it returns; the next one that
 * finds the mark left set drops the half-built batch (its launches are the interrupted
 * cell's, unfinished work), says so on stderr, and starts afresh.
 *
 * @module
 */
import type { KernelTime } from "./types.ts";
export type { KernelTime };
import {
  adapterProfile,
  deviceSync,
  errorsReported,
  recordError,
  throwIfErrors,
} from "./device.ts";
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
/** Set while a launch, copy or submit changes the encoder; left set only by an interrupt. */
let encoding = false;

/**
 * Marks the start of a change to the encoder; first recovers from a change that never ended
 * (see the module doc). Each caller clears {@link encoding} when it returns or throws.
 */
function beginEncoding(): void {
  if (encoding) dropInterruptedBatch();
  encoding = true;
}

/** Forgets the encoder, pass and uniform arena left by an interrupted launch or submit. */
function dropInterruptedBatch(): void {
  console.warn(
    `bnlab: a cell was interrupted while it encoded GPU work; its ${launches} launch(es) ` +
      "not yet submitted were dropped (tensors it was computing hold stale data). " +
      "Tensors made before it are unaffected.",
  );
  profile = undefined;
  discardPending();
}

/**
 * Drops every launch encoded since the last submit, and says how many: for a caller whose
 * batch holds only work it wants undone (`fit`, whose interrupted step is the batch: see
 * `FitInterruptedError`).
 */
export function discardPending(): number {
  const n = launches;
  encoder = undefined;
  pass = undefined;
  launches = 0;
  chunkIndex = 0;
  chunkOffset = 0;
  encoding = false;
  return n;
}

/**
 * Whether a launch or submit was interrupted and never finished (true only between an
 * interrupt and the next launch, copy, flush or {@link recoverInterrupted}).
 */
export function interruptedEncoding(): boolean {
  return encoding;
}

/**
 * Recovers the batching state after an interrupted cell, if it needs it (see the module
 * doc): for a caller that knows no launch is running (a timer, between two cells).
 */
export function recoverInterrupted(): void {
  if (encoding) dropInterruptedBatch();
}

/** Submits, pending launches and bind groups so far; public as `gpu.queueStats` (api.ts). */
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

/**
 * Ends the open pass, if any. It is forgotten before it is ended, as {@link submit} forgets
 * the encoder before finishing it: a call that throws midway (the caller's `finally` then
 * clears {@link encoding}) leaves no ended pass or finished encoder behind for the next
 * launch to encode into, which WebGPU would refuse ("Encoding must not have ended").
 */
function endPass(): void {
  const p = pass;
  pass = undefined;
  p?.end();
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
   * GPUBuffer is bound whole; null leaves binding i out (one the entry point does not use,
   * below one it does).
   */
  bindings: (GPUBuffer | Uniforms | null)[];
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
  beginEncoding();
  try {
    encodeLaunch(l);
  } finally {
    encoding = false;
  }
  if (launches >= AUTO_FLUSH) flush();
}

function encodeLaunch(l: Launch): void {
  const pipe = getPipeline(l.label, l.code, l.overrides, l.entryPoint);
  const bound = l.bindings.map((b, i) =>
    b === null ? null : b instanceof Uniforms ? uniformSlot(uniformBytes(l, b, i)) : { buffer: b }
  );
  const p = profile ? profiledPass(profile, l) : getPass();
  p.setPipeline(pipe);
  p.setBindGroup(0, bindGroup(l.label, pipe, bound));
  const [x, y = 1, z = 1] = l.workgroups;
  if (x > 0 && y > 0 && z > 0) p.dispatchWorkgroups(x, y, z);
  if (profile) endPass();
  launches++;
}

/** A timestamp query set holds at most 4096 queries: 2048 launches of two timestamps each. */
const QUERIES = 4096;

interface Profile {
  sets: GPUQuerySet[];
  /** Label and entry point of each launch, in order: launch k wrote queries 2k and 2k + 1. */
  kernels: { label: string; entryPoint: string }[];
}

/** Set while {@link profileLaunches} runs its function: every launch then gets its own pass. */
let profile: Profile | undefined;

/** A new compute pass for `l` alone, with timestamps at its start and end. */
function profiledPass(p: Profile, l: Launch): GPUComputePassEncoder {
  endPass();
  const k = p.kernels.length % (QUERIES / 2);
  if (k === 0) {
    p.sets.push(
      deviceSync().createQuerySet({
        label: `profile timestamps ${p.sets.length}`,
        type: "timestamp",
        count: QUERIES,
      }),
    );
  }
  p.kernels.push({ label: l.label, entryPoint: l.entryPoint ?? "main" });
  pass = getEncoder().beginComputePass({
    label: `${l.label} (profiled)`,
    timestampWrites: {
      querySet: p.sets.at(-1)!,
      beginningOfPassWriteIndex: 2 * k,
      endOfPassWriteIndex: 2 * k + 1,
    },
  });
  return pass;
}

/**
 * Each launch of `fn` in a pass of its own, timestamped; the device time per kernel. Public
 * as `gpu.profileLaunches`, documented in api.ts.
 */
export async function profileLaunches(fn: () => void): Promise<KernelTime[]> {
  const device = deviceSync();
  if (!device.features.has("timestamp-query")) {
    throw new Error(
      `profileLaunches needs GPU timestamps, and this device has none: the adapter ` +
        `(${adapterProfile().description}) does not offer the "timestamp-query" feature.`,
    );
  }
  if (profile) {
    throw new Error("profileLaunches was called inside profileLaunches: it does not nest");
  }
  flush(); // what was encoded before is not fn's
  const p: Profile = { sets: [], kernels: [] };
  let resolved: GPUBuffer | undefined, staging: GPUBuffer | undefined;
  try {
    profile = p;
    try {
      fn();
    } finally {
      profile = undefined;
      flush(); // fn's launches, each in its own pass, are submitted even if fn threw
    }
    const n = p.kernels.length;
    if (n === 0) return [];
    // Query set i resolves to bytes [i * QUERIES * 8, ...): offsets stay 256-byte aligned.
    resolved = device.createBuffer({
      label: "profile timestamps resolved",
      size: 16 * n,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    staging = device.createBuffer({
      label: "profile timestamps readback",
      size: 16 * n,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = getEncoder();
    p.sets.forEach((set, i) => {
      const count = Math.min(QUERIES, 2 * n - i * QUERIES);
      encoder.resolveQuerySet(set, 0, count, resolved!, i * QUERIES * 8);
    });
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, 16 * n);
    flush();
    await staging.mapAsync(GPUMapMode.READ);
    throwIfErrors();
    const t = new BigUint64Array(staging.getMappedRange());
    const byKernel = new Map<string, KernelTime>();
    p.kernels.forEach(({ label, entryPoint }, k) => {
      const key = `${label}\u0000${entryPoint}`;
      let e = byKernel.get(key);
      if (!e) byKernel.set(key, e = { label, entryPoint, launches: 0, us: 0 });
      e.launches++;
      // ns; an implementation may report an end before its start (0 duration, then)
      e.us += Math.max(0, Number(t[2 * k + 1] - t[2 * k])) / 1000;
    });
    staging.unmap();
    return [...byKernel.values()].sort((a, b) => b.us - a.us);
  } finally {
    for (const set of p.sets) set.destroy();
    resolved?.destroy();
    staging?.destroy();
  }
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
  beginEncoding();
  try {
    endPass();
    getEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  } finally {
    encoding = false;
  }
}

/**
 * Checks run just after every host wait ({@link readBuffer}, {@link sync}), where the JS
 * stack holds no synchronous bnlab call: what such a call keeps open while it runs (a `tidy`
 * scope, `noGrad`) must be closed there, unless an interrupt killed the call (see the
 * module doc); each check puts its state back then.
 */
const afterWaits: (() => void)[] = [];

/** Registers `check` to run after every host wait (see {@link afterWaits}). */
export function addAfterWait(check: () => void): void {
  afterWaits.push(check);
}

function afterWait(): void {
  recoverInterrupted();
  for (const check of afterWaits) check();
}

/** Submits all encoded work. Cheap: it does not wait for the GPU. */
export function flush(): void {
  beginEncoding();
  try {
    submit();
  } finally {
    encoding = false;
  }
}

function submit(): void {
  if (!encoder) return;
  endPass();
  // The batch is taken off the shared state before it is finished (see endPass).
  const batch = encoder, lastChunk = chunkIndex, lastUsed = chunkOffset;
  encoder = undefined;
  launches = 0;
  chunkIndex = 0;
  chunkOffset = 0;
  const device = deviceSync();
  for (let i = 0; i <= lastChunk && i < chunks.length; i++) {
    const used = i < lastChunk ? CHUNK : lastUsed;
    if (used) device.queue.writeBuffer(chunks[i].buffer, 0, chunks[i].data, 0, used);
  }
  device.pushErrorScope("validation");
  try {
    device.queue.submit([batch.finish()]);
  } finally {
    device.popErrorScope().then((e) => {
      if (e) recordError(e.message);
    });
  }
  submits++;
}

/** Submits pending work and waits for the GPU to finish it; throws on any WebGPU error. */
export async function sync(): Promise<void> {
  flush();
  await deviceSync().queue.onSubmittedWorkDone();
  afterWait();
  await errorsReported();
  throwIfErrors();
}

const staging = new Map<number, GPUBuffer[]>();

/** A small GPU buffer read along with every {@link readBuffer}: see {@link addReadCheck}. */
interface ReadAlong {
  buffer: GPUBuffer;
  bytes: number;
  /** Called when the copy is encoded; its result is handed to `onRead`. */
  snapshot(): number;
  onRead(data: ArrayBuffer, snapshot: number): void;
}
const readAlongs: ReadAlong[] = [];

/**
 * Registers `buffer` (its first `bytes` bytes, a multiple of 4) to be copied back with every
 * later {@link readBuffer}, in the same host wait, and handed to `onRead` (which may throw:
 * the read then throws) with what `snapshot` returned when the copy was encoded. How a mode
 * such as anomaly detection reports what the GPU found without waiting on its own.
 */
export function addReadCheck(
  buffer: GPUBuffer,
  bytes: number,
  onRead: (data: ArrayBuffer, snapshot: number) => void,
  snapshot: () => number = () => 0,
): void {
  readAlongs.push({ buffer, bytes, onRead, snapshot });
}

/** Copies `bytes` bytes of `src` back to the host (flushes, then one host wait). */
export async function readBuffer(
  src: GPUBuffer,
  bytes: number,
  srcOffset = 0,
): Promise<ArrayBuffer> {
  const along = readAlongs.map((r) => ({ r, at: 0, snap: 0 }));
  let size = Math.ceil(bytes / 4) * 4;
  for (const a of along) {
    a.at = size;
    size += a.r.bytes;
  }
  const list = staging.get(size);
  const dst = list?.pop() ?? deviceSync().createBuffer({
    label: `readback[${size}]`,
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  copyBuffer(src, dst, Math.ceil(bytes / 4) * 4, srcOffset);
  for (const a of along) {
    copyBuffer(a.r.buffer, dst, a.r.bytes, 0, a.at);
    a.snap = a.r.snapshot();
  }
  flush();
  try {
    await dst.mapAsync(GPUMapMode.READ);
    afterWait();
  } catch (e) {
    throwIfErrors();
    throw e;
  }
  const mapped = dst.getMappedRange();
  const out = mapped.slice(0, bytes);
  const extra = along.map((a) => mapped.slice(a.at, a.at + a.r.bytes));
  dst.unmap();
  if (list) list.push(dst);
  else staging.set(size, [dst]);
  throwIfErrors();
  along.forEach((a, i) => a.r.onRead(extra[i], a.snap));
  return out;
}
