/**
 * The GPU runtime: the device and its adapter's profile, the queue, the buffer pool's
 * counters and per-kernel timing, the runtime's errors, and the schedule choice
 * (`choose`, `MAX_LOOP`) that ops use.
 *
 * Each file here is re-exported whole (`export *`), so that `deno doc` lists the namespace's
 * members: api.ts declares the public functions over the runtime's internals.
 *
 * @module
 */
export * from "./api.ts";
export * from "./errors.ts";
export * from "./types.ts";
export * from "./profile.ts";
