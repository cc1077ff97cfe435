/**
 * One WebGPU device per process, acquired lazily, with every validation error surfaced.
 *
 * WebGPU reports validation errors asynchronously and, in Deno, a bad command is simply
 * dropped: results come back wrong and nothing throws. bnlab listens for
 * `uncapturederror` and wraps each submit in an error scope; the errors are collected
 * here and thrown by the next host wait (`toArray`, `sync`) as a {@link GPUValidationError}.
 *
 * @module
 */

import { type AdapterProfile, profileOf } from "./profile.ts";
import { quietWayland } from "./quiet_wayland.ts";
import { GPUValidationError } from "./errors.ts";

export { GPUValidationError };
export type { AdapterInfo } from "./types.ts";

interface DeviceState {
  device: GPUDevice;
  info: AdapterProfile;
  errors: string[];
  lost?: string;
}

/**
 * One copy of bnlab per process. Two copies (the library imported from two URLs, say
 * `file:///a/mod.ts` and a copy of the tree at `file:///b/`) would each acquire a device and
 * keep a command encoder of its own: a tensor of one is not a tensor to the other, and work
 * one copy encoded is not submitted when the other reads back. So the first copy to load
 * claims the process under a global symbol, and any other copy refuses to load, naming both.
 */
const OWNER = Symbol.for("bnlab: the URL of the copy that owns this process's GPU device");
const root = new URL("../../", import.meta.url).href;
const globals = globalThis as unknown as Record<symbol, string | undefined>;
if (globals[OWNER] !== undefined && globals[OWNER] !== root) {
  throw new Error(
    `bnlab was imported a second time in this process, from ${root}, while the copy from ` +
      `${globals[OWNER]} is loaded. Two copies would drive two GPU devices whose tensors ` +
      "cannot be mixed; import bnlab from one URL only (restart the kernel or process if " +
      "the first import is no longer wanted).",
  );
}
globals[OWNER] = root;

let state: Promise<DeviceState> | undefined;
let current: DeviceState | undefined;

const LINUX_HINT = "On Linux without a GPU install Mesa's software Vulkan driver: " +
  "`apt-get install mesa-vulkan-drivers libvulkan1`.";

async function acquire(): Promise<DeviceState> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new Error(
      "WebGPU is not available: `navigator.gpu` is undefined. Run with Deno 2 (WebGPU is " +
        "built in) or a browser that supports WebGPU.",
    );
  }
  const gpu = navigator.gpu;
  const adapter = await quietWayland(() =>
    gpu.requestAdapter({ powerPreference: "high-performance" })
  );
  if (!adapter) throw new Error(`No WebGPU adapter found. ${LINUX_HINT}`);
  // The adapter cannot be used after requestDevice: read everything we need first.
  const ai = adapter.info;
  const wanted: GPUFeatureName[] = ["timestamp-query", "shader-f16"];
  const features = wanted.filter((f) => adapter.features.has(f));
  const limits: Record<string, number> = {};
  for (
    const k of [
      "maxStorageBufferBindingSize",
      "maxBufferSize",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
      "maxComputeWorkgroupsPerDimension",
      "maxStorageBuffersPerShaderStage",
      "maxUniformBufferBindingSize",
    ] as const
  ) limits[k] = adapter.limits[k];
  const info = profileOf(ai, features, limits);
  const device = await quietWayland(() =>
    adapter.requestDevice({ label: "bnlab", requiredFeatures: features, requiredLimits: limits })
  );
  const s: DeviceState = { device, info, errors: [] };
  device.addEventListener("uncapturederror", (e) => {
    s.errors.push((e as GPUUncapturedErrorEvent).error.message);
  });
  device.lost.then((l) => {
    s.lost = `${l.reason}: ${l.message}`;
  });
  current = s;
  return s;
}

/** The process-wide GPU device, created on first use. */
export function getDevice(): Promise<GPUDevice> {
  state ??= acquire().catch((e) => {
    state = undefined; // allow a retry after e.g. installing drivers
    throw e;
  });
  return state.then((s) => s.device);
}

/** Adapter information for the process-wide device (acquires it if needed). */
export async function adapterInfo(): Promise<AdapterProfile> {
  await getDevice();
  return current!.info;
}

/** The adapter's profile, synchronously (after {@link getDevice}); public as `gpu.adapterProfile`. */
export function adapterProfile(): AdapterProfile {
  deviceSync(); // throws a clear error before the device exists or after it was lost
  return current!.info;
}

/**
 * The device, synchronously. bnlab's synchronous ops call this; it throws a clear error
 * if {@link getDevice} has not resolved yet (all public entry points that create tensors
 * from data await it first).
 */
export function deviceSync(): GPUDevice {
  if (!current) {
    throw new Error(
      "The GPU device is not initialised yet: import bnlab's `mod.ts` (which acquires it) " +
        "or `await getDevice()` before calling synchronous GPU operations.",
    );
  }
  if (current.lost) throw new Error(`The GPU device was lost (${current.lost}).`);
  return current.device;
}

/** Records an error message reported by an error scope. */
export function recordError(message: string): void {
  current?.errors.push(message);
}

/**
 * Waits until WebGPU has reported the errors of everything done so far. Deno reports them
 * before the queue says the work is done; Chromium may report them after (seen in 3 runs of
 * 3: a bad shader's bind-group errors arrived after `onSubmittedWorkDone`, and failed the
 * next wait instead). An empty error scope's result comes back from the GPU process behind
 * every earlier error (0 of 4 runs failed with it). No cost measured in Deno (an empty
 * `sync()`: 11.1-11.2 ms median with it, 11.2-11.3 without; a `setTimeout(0)` here added 2).
 */
export async function errorsReported(): Promise<void> {
  const device = current?.device;
  if (!device) return;
  device.pushErrorScope("validation");
  await device.popErrorScope();
}

/** Throws a {@link GPUValidationError} if WebGPU reported any error since the last call. */
export function throwIfErrors(): void {
  if (!current) return;
  if (current.lost) throw new Error(`The GPU device was lost (${current.lost}).`);
  if (current.errors.length) {
    const errs = current.errors.splice(0);
    throw new GPUValidationError(errs);
  }
}
