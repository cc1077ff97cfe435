/**
 * The GPU runtime: device, pipelines, buffer pool and batched command encoding.
 *
 * @module
 */
export { type AdapterInfo, adapterInfo, getDevice, GPUValidationError } from "./device.ts";
export { GPUAllocationError, type MemoryStats, memoryStats, trimPool } from "./buffer_pool.ts";
export { flush, queueStats, sync } from "./queue.ts";
