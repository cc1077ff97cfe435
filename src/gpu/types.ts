/**
 * The GPU runtime's public data types (`gpu.AdapterInfo`, `gpu.MemoryStats`,
 * `gpu.KernelTime`), apart from the modules that fill them so that `gpu` can re-export this
 * file whole (`deno doc` lists a namespace's members only so).
 *
 * @module
 */
import type { AdapterProfile } from "./profile.ts";

/** What bnlab knows about the adapter it runs on: its {@link AdapterProfile}. */
export type AdapterInfo = AdapterProfile;

/** Memory counters of the pool, in bytes. */
export interface MemoryStats {
  /** Bytes in buffers currently held by tensors or kernels. */
  liveBytes: number;
  /** Bytes in released buffers waiting for reuse. */
  pooledBytes: number;
  /** Number of GPU buffers ever created by the pool and not destroyed. */
  buffers: number;
}

/** The time of one kernel's launches in a `profileLaunches` run. */
export interface KernelTime {
  /** The launch's label, e.g. `conv2d.forward@llvmpipe` (op, kernel, then the schedule). */
  label: string;
  /** Its entry point. */
  entryPoint: string;
  /** How many times it was launched. */
  launches: number;
  /** The sum, over those launches, of the time between its pass's two timestamps, in us. */
  us: number;
}
