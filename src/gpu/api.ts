/**
 * The GPU runtime's public functions, as `gpu.*` of `mod.ts`: the device and its adapter,
 * the queue, the buffer pool's counters, and per-kernel timing. Each calls the module that
 * implements it (device.ts, queue.ts, buffer_pool.ts); they are declared here so that `gpu`
 * can re-export this file whole (`deno doc` lists a namespace's members only so) without
 * making the runtime's internals public.
 *
 * @module
 */
import * as device from "./device.ts";
import * as queue from "./queue.ts";
import * as pool from "./buffer_pool.ts";
import type { AdapterProfile } from "./profile.ts";
import type { KernelTime, MemoryStats } from "./types.ts";

/**
 * The process-wide WebGPU device, acquired on the first call (importing `mod.ts` does it):
 * the adapter that `navigator.gpu` offers with high-performance preference, every feature
 * bnlab uses that it has, and its limits. Rejects with what to install when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu } from "../../mod.ts";
 * const device = await gpu.getDevice();
 * assert.equal(device, await gpu.getDevice()); // one per process
 * ```
 */
export function getDevice(): Promise<GPUDevice> {
  return device.getDevice();
}

/**
 * The adapter the device runs on (acquires the device if needed): its description, kind,
 * vendor, features, limits and the family whose schedules were measured on it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu } from "../../mod.ts";
 * const info = await gpu.adapterInfo();
 * assert.ok(info.kind === "cpu" || info.kind === "gpu");
 * assert.equal(typeof info.description, "string");
 * ```
 */
export function adapterInfo(): Promise<AdapterProfile> {
  return device.adapterInfo();
}

/**
 * The adapter's profile, synchronously (after {@link getDevice}): what every op chooses its
 * schedule from (README, "One op, any adapter: schedules").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu } from "../../mod.ts";
 * const p = gpu.adapterProfile();
 * assert.equal(p.measured === "llvmpipe", p.description.startsWith("llvmpipe"));
 * ```
 */
export function adapterProfile(): AdapterProfile {
  return device.adapterProfile();
}

/**
 * Submits the kernel launches encoded so far, without waiting for the GPU (cheap). Ops
 * encode into one batch; a training loop flushes once a step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu, Tensor } from "../../mod.ts";
 * const y = Tensor.ones([4]).mul(2);
 * gpu.flush();
 * assert.equal(gpu.queueStats().pendingLaunches, 0);
 * assert.deepEqual([...await y.toArray()], [2, 2, 2, 2]);
 * ```
 */
export function flush(): void {
  queue.flush();
}

/**
 * Submits pending work and waits until the GPU has done it; throws a `GPUValidationError`
 * if WebGPU reported any error meanwhile.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu, Tensor } from "../../mod.ts";
 * Tensor.ones([4]).mul(2);
 * await gpu.sync();
 * assert.equal(gpu.queueStats().pendingLaunches, 0);
 * ```
 */
export function sync(): Promise<void> {
  return queue.sync();
}

/**
 * Counters for tests and benchmarks: submits so far, launches encoded and not yet
 * submitted, and bind groups created so far (a launch that binds what an earlier one bound
 * reuses that one's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu, Tensor } from "../../mod.ts";
 * const before = gpu.queueStats().submits;
 * await Tensor.ones([4]).toArray(); // a read submits what was encoded
 * assert.ok(gpu.queueStats().submits > before);
 * ```
 */
export function queueStats(): { submits: number; pendingLaunches: number; bindGroups: number } {
  return queue.queueStats();
}

/**
 * Runs `fn` (synchronous: it encodes launches, and may flush) with each of its kernel
 * launches in a compute pass of its own, timestamped on the device at the pass's start and
 * end; then reads the timestamps back, in one host wait, and sums them per kernel (label and
 * entry point), the slowest first. Work encoded before is submitted first; afterwards, and
 * when `fn` throws (its launches are still submitted), launches share one pass again.
 *
 * What it measures: the device's time for each launch, not the JS thread's time to encode it,
 * nor gaps between launches, nor buffer copies (which are outside compute passes). A pass per
 * launch costs more than one shared pass (on llvmpipe, a LeNet step takes longer profiled: see
 * bench/train/README.md), so compare kernels with each other, and the sum with the step.
 *
 * Needs the adapter's `timestamp-query` feature (requested whenever the adapter offers it;
 * Mesa's lavapipe does); without it, it throws an error saying so. Profiles do not nest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu, Tensor, tidy } from "../../mod.ts";
 * const x = Tensor.ones([1000]);
 * if ((await gpu.getDevice()).features.has("timestamp-query")) {
 *   const kernels = await gpu.profileLaunches(() => tidy(() => void x.mul(2).add(1).mul(3)));
 *   assert.equal(kernels.reduce((n, k) => n + k.launches, 0), 3);
 *   assert.ok(kernels.every((k) => k.us >= 0 && k.label.length > 0));
 * }
 * ```
 */
export function profileLaunches(fn: () => void): Promise<KernelTime[]> {
  return queue.profileLaunches(fn);
}

/**
 * A snapshot of the buffer pool's counters: bytes held by live tensors, bytes of released
 * buffers kept for reuse, and the number of buffers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu, Tensor } from "../../mod.ts";
 * const before = gpu.memoryStats().liveBytes;
 * const t = Tensor.zeros([1024]);
 * assert.ok(gpu.memoryStats().liveBytes >= before + 4096);
 * t.dispose();
 * assert.equal(gpu.memoryStats().liveBytes, before);
 * ```
 */
export function memoryStats(): MemoryStats {
  return pool.memoryStats();
}

/**
 * Destroys every pooled (released) buffer, giving its memory back to the driver.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu, Tensor } from "../../mod.ts";
 * Tensor.zeros([1024]).dispose(); // its buffer goes to the pool
 * gpu.trimPool();
 * assert.equal(gpu.memoryStats().pooledBytes, 0);
 * ```
 */
export function trimPool(): void {
  pool.trimPool();
}
