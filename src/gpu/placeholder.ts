/**
 * Placeholder buffers for bindings a kernel variant does not touch.
 *
 * A WGSL file declares every binding its entry points may use, and WebGPU requires each
 * declared binding to be bound, even when an `override` switches its use off (no bias,
 * no running statistics, no momentum buffer). Such bindings get a small placeholder.
 * Placeholders are distinct per index, because WebGPU refuses one buffer bound twice in
 * a dispatch when either binding is writable.
 *
 * @module
 */
import { deviceBuffers } from "./device_buffers.ts";

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const placeholders = deviceBuffers("placeholder", 16, USAGE);

/**
 * The `i`-th placeholder buffer (16 bytes, never read or written by a kernel that
 * honours its overrides). Use a different `i` for each unused binding of one launch.
 */
export function placeholder(i = 0): GPUBuffer {
  return placeholders(i);
}
