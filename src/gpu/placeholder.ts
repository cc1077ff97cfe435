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
import { deviceSync } from "./device.ts";

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const made = new WeakMap<GPUDevice, GPUBuffer[]>();

/**
 * The `i`-th placeholder buffer (16 bytes, never read or written by a kernel that
 * honours its overrides). Use a different `i` for each unused binding of one launch.
 */
export function placeholder(i = 0): GPUBuffer {
  const device = deviceSync();
  let list = made.get(device);
  if (!list) made.set(device, list = []);
  while (list.length <= i) {
    list.push(device.createBuffer({ label: `placeholder ${list.length}`, size: 16, usage: USAGE }));
  }
  return list[i];
}
