/**
 * Compute pipelines, compiled once per device and WGSL source and cached.
 *
 * A kernel is a complete `.wgsl` file imported as text; its tunables are `override`
 * constants, so one source yields one pipeline per distinct set of constants.
 *
 * @module
 */
import { deviceSync, recordError } from "./device.ts";

// Per device, per WGSL source (the same string object at every launch of a kernel, whose
// hash V8 keeps), per label, entry point and constants. Keyed by the source alone first: a
// key that concatenated the source (30 KB for conv2d.wgsl) cost ~8 us per launch.
const cache = new WeakMap<GPUDevice, Map<string, Map<string, GPUComputePipeline>>>();
const modules = new Map<string, GPUShaderModule>(); // one device per process

/** Constants passed to a kernel's `override` declarations. */
export type Overrides = Record<string, number>;

/**
 * The cached compute pipeline for `code` with the given `override` constants.
 * The entry point defaults to `main`; the layout is inferred from the shader (per entry point).
 */
export function pipeline(
  label: string,
  code: string,
  constants: Overrides = {},
  entryPoint = "main",
): GPUComputePipeline {
  const device = deviceSync();
  let perDevice = cache.get(device);
  if (!perDevice) cache.set(device, perDevice = new Map());
  let perCode = perDevice.get(code);
  if (!perCode) perDevice.set(code, perCode = new Map());
  const keys = Object.keys(constants).sort();
  const key = `${label}\u0000${entryPoint}\u0000${
    keys.map((k) => `${k}=${constants[k]}`).join(",")
  }`;
  let p = perCode.get(key);
  if (!p) {
    device.pushErrorScope("validation");
    const module = modules.get(code) ?? device.createShaderModule({ label, code });
    modules.set(code, module);
    p = device.createComputePipeline({
      label: keys.length ? `${label}(${keys.map((k) => `${k}=${constants[k]}`)})` : label,
      layout: "auto",
      compute: { module, entryPoint, constants },
    });
    device.popErrorScope().then((e) => {
      if (e) recordError(`pipeline ${label}: ${e.message}`);
    });
    perCode.set(key, p);
  }
  return p;
}
