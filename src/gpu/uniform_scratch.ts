/**
 * 64 KiB scratch buffers that a kernel fills as storage and the next one reads as a uniform
 * buffer: packed weights that every lane of a workgroup reads at the same index, which
 * llvmpipe loads at about half the cost of a storage load (the convolutions' weights,
 * `linear`'s chunks of weights or of dout).
 *
 * They are reused call after call and between ops: a queue runs each pack before the
 * dispatch that reads it, and that dispatch before the next pack that overwrites it.
 * Several live at once when one op reads several chunks.
 *
 * @module
 */
import { deviceSync } from "./device.ts";

/** Floats in one scratch buffer: 64 KiB, the uniform-buffer binding limit. */
export const UNIFORM_SCRATCH_FLOATS = 16384;

const made = new WeakMap<GPUDevice, GPUBuffer[]>();

/** The `i`-th scratch buffer of the current device (created on first use). */
export function uniformScratch(i = 0): GPUBuffer {
  const device = deviceSync();
  let list = made.get(device);
  if (!list) made.set(device, list = []);
  while (list.length <= i) {
    list.push(device.createBuffer({
      label: `uniform scratch ${list.length}`,
      size: 4 * UNIFORM_SCRATCH_FLOATS,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM,
    }));
  }
  return list[i];
}
