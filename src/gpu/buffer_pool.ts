/**
 * GPU storage buffers, owned and recycled.
 *
 * Every tensor's storage comes from here. A released buffer goes back to a free list
 * keyed by its size class and is handed out again for the next request of that class,
 * so a training loop that repeats the same step allocates nothing after its first step.
 *
 * Reuse is safe without waiting on the GPU: all work runs in submission order on one
 * queue, so a buffer released after being read by command k and reused by command k+1
 * is read before it is overwritten. The one exception, `queue.writeBuffer` (which runs
 * before commands still being encoded), is never used on pooled buffers: uploads go
 * through {@link uploadBuffer}, which creates a fresh buffer mapped at creation.
 *
 * @module
 */
import { deviceSync } from "./device.ts";
import { GPUAllocationError } from "./errors.ts";
import type { MemoryStats } from "./types.ts";

export { GPUAllocationError };
export type { MemoryStats };

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

const free = new Map<number, GPUBuffer[]>();
const stats: MemoryStats = { liveBytes: 0, pooledBytes: 0, buffers: 0 };

/** Rounds a byte size up to its size class: 256 B minimum, then quarter steps between powers of two. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes - 1));
  const step = Math.max(p / 4, 256);
  return Math.ceil(bytes / step) * step;
}

function checkSize(bytes: number, label: string): void {
  const { maxStorageBufferBindingSize, maxBufferSize } = deviceSync().limits;
  const limit = Math.min(maxStorageBufferBindingSize, maxBufferSize);
  if (!(bytes <= limit)) throw new GPUAllocationError(bytes, limit, `a ${label} buffer`);
}

/** A storage buffer of at least `bytes` bytes, from the pool when one is free. */
export function allocBuffer(bytes: number, label = "tensor"): GPUBuffer {
  checkSize(bytes, label);
  const size = sizeClass(bytes);
  const list = free.get(size);
  stats.liveBytes += size;
  if (list?.length) {
    stats.pooledBytes -= size;
    return list.pop()!;
  }
  stats.buffers++;
  return deviceSync().createBuffer({ label: `${label}[${size}]`, size, usage: USAGE });
}

/** A fresh buffer holding `data` (never a pooled one; see the module doc). */
export function uploadBuffer(data: ArrayBufferView, label = "upload"): GPUBuffer {
  checkSize(data.byteLength, label);
  const size = sizeClass(data.byteLength);
  const buf = deviceSync().createBuffer({
    label: `${label}[${size}]`,
    size,
    usage: USAGE,
    mappedAtCreation: true,
  });
  new Uint8Array(buf.getMappedRange()).set(
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
  buf.unmap();
  stats.buffers++;
  stats.liveBytes += size;
  return buf;
}

/** Returns a buffer obtained from {@link allocBuffer} or {@link uploadBuffer} to the pool. */
export function releaseBuffer(buf: GPUBuffer): void {
  const size = buf.size;
  stats.liveBytes -= size;
  stats.pooledBytes += size;
  let list = free.get(size);
  if (!list) free.set(size, list = []);
  list.push(buf);
}

/** Destroys every pooled (released) buffer, giving its memory back to the driver. */
export function trimPool(): void {
  for (const list of free.values()) {
    for (const b of list) {
      b.destroy();
      stats.buffers--;
    }
  }
  free.clear();
  stats.pooledBytes = 0;
}

/** A snapshot of the pool's counters. */
export function memoryStats(): MemoryStats {
  return { ...stats };
}
