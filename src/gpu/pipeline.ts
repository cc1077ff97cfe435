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
const created: PipelineRecord[] = []; // see pipelinesCreated

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
    // The label names the entry point and the constants, so that an error names the kernel.
    const name = `${label}: ${entryPoint}(${keys.map((k) => `${k}=${constants[k]}`).join(", ")})`;
    device.pushErrorScope("validation");
    const module = modules.get(code) ?? device.createShaderModule({ label, code });
    modules.set(code, module);
    p = device.createComputePipeline({
      label: name,
      layout: "auto",
      compute: { module, entryPoint, constants },
    });
    device.popErrorScope().then((e) => {
      if (e) recordError(`pipeline ${name}: ${e.message}`);
    });
    perCode.set(key, p);
    created.push({ label: name, entryPoint, constants: { ...constants }, code });
  }
  return p;
}

/** A compute pipeline that {@link pipeline} created. */
export interface PipelineRecord {
  /** The pipeline's label: the launch's label, then `entryPoint(constants)`. */
  label: string;
  /** The entry point in `code`. */
  entryPoint: string;
  /** The values given to its `override` constants. */
  constants: Overrides;
  /** The WGSL source (the text of its .wgsl file). */
  code: string;
}

/**
 * Every compute pipeline created in this process so far, in order: the browser suite
 * (tests/browser/run.ts) checks that each `@compute` entry point of every .wgsl file in src/
 * was created, and so compiled and run, in Chromium, and (from the labels, which name the
 * schedule after an `@`) that every schedule of every op ran.
 */
export function pipelinesCreated(): readonly PipelineRecord[] {
  return created;
}
