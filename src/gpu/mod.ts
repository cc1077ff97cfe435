/**
 * The GPU runtime: device and adapter profile, pipelines, buffer pool and batched command
 * encoding.
 *
 * @module
 */
export {
  type AdapterInfo,
  adapterInfo,
  adapterProfile,
  getDevice,
  GPUValidationError,
} from "./device.ts";
export type { AdapterFamily, AdapterProfile, Schedule } from "./profile.ts";
export { GPUAllocationError, type MemoryStats, memoryStats, trimPool } from "./buffer_pool.ts";
export { flush, type KernelTime, profileLaunches, queueStats, sync } from "./queue.ts";
