/**
 * `gpuTest`: a `Deno.test` that fails on any WebGPU validation error raised while it
 * ran, not only on wrong numbers (a dropped command in Deno gives silently wrong data).
 *
 * @module
 */
import { sync } from "../src/gpu/queue.ts";
import { getDevice, throwIfErrors } from "../src/gpu/device.ts";

/** Registers a GPU test: acquires the device, runs `fn`, then waits for the GPU and throws on any error. */
export function gpuTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({
    name,
    // WebGPU objects are process-wide and pooled, so resource sanitizing does not apply.
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await getDevice();
      throwIfErrors(); // errors left by an earlier test belong to that test, not this one
      await fn();
      await sync();
    },
  });
}
