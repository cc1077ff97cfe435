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
import { deviceBuffers } from "./device_buffers.ts";

/** Floats in one scratch buffer: 64 KiB, the uniform-buffer binding limit. */
export const UNIFORM_SCRATCH_FLOATS = 16384;

const scratch = deviceBuffers(
  "uniform scratch",
  4 * UNIFORM_SCRATCH_FLOATS,
  GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
);

/** The `i`-th scratch buffer of the current device (created on first use). */
export function uniformScratch(i = 0): GPUBuffer {
  return scratch(i);
}
