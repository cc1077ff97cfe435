/**
 * The adapter profile: what the adapter is, read once when the device is acquired, and the
 * one place where bnlab tells adapters apart.
 *
 * An op computes the same thing on every adapter; how it cuts the work (threads per row,
 * register tiles, which kernel) is its *schedule*. Each op has a plain schedule that reads
 * like its float64 reference and is correct on any adapter: it is the default wherever
 * nobody has measured. A tuned schedule names the adapter family it was measured on
 * ({@link Schedule.adapters}) and is chosen only there, by {@link choose}; the op passes the
 * chosen schedule down to its launchers as a value. There are no global tuning knobs: a
 * test or a benchmark that wants another schedule passes it.
 *
 * Measured today: Mesa's llvmpipe (lavapipe, Vulkan on the CPU), on 2-core AMD EPYC and
 * Intel Xeon machines. A GPU, or Chromium's SwiftShader, runs the plain schedules.
 *
 * @module
 */

/** Adapter families that tuned schedules can be measured on. */
export type AdapterFamily = "llvmpipe";

/** What bnlab knows about the adapter it runs on. */
export interface AdapterProfile {
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  readonly description: string;
  /** The vendor as the adapter reports it (a PCI id or a name; may be empty). */
  readonly vendor: string;
  /** The architecture as the adapter reports it (e.g. "swiftshader"; may be empty). */
  readonly architecture: string;
  /** True for software adapters such as Mesa's lavapipe, as the adapter reports it. */
  readonly isFallbackAdapter: boolean;
  /** A CPU adapter (llvmpipe, SwiftShader, WARP), or a GPU. */
  readonly kind: "cpu" | "gpu";
  /** Features the device was created with. */
  readonly features: readonly string[];
  /** The limits the device was created with (the adapter's own). */
  readonly limits: Readonly<Record<string, number>>;
  /** The adapter's subgroup sizes, where it reports them. */
  readonly subgroupSizes: { readonly min: number; readonly max: number } | null;
  /** The family whose tuned schedules apply here, or null: plain schedules. */
  readonly measured: AdapterFamily | null;
}

/** The adapter fields {@link profileOf} reads (a `GPUAdapterInfo` has them). */
export interface AdapterFacts {
  /** The adapter's description (Deno: "llvmpipe (LLVM 15.0.6, 256 bits)"). */
  description?: string;
  /** Its device name, where the description is empty (browsers). */
  device?: string;
  /** Its vendor. */
  vendor?: string;
  /** Its architecture. */
  architecture?: string;
  /** Whether it is a fallback (software) adapter. */
  isFallbackAdapter?: boolean;
  /** The smallest subgroup size, where reported. */
  subgroupMinSize?: number;
  /** The largest subgroup size, where reported. */
  subgroupMaxSize?: number;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|warp|microsoft basic render/i;

/**
 * The profile of an adapter from what it reports: llvmpipe is recognised by its name
 * (Deno's wgpu reports "llvmpipe (LLVM 15.0.6, 256 bits)" as the description).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu } from "../../mod.ts";
 * const lavapipe = gpu.profileOf(
 *   { description: "llvmpipe (LLVM 15.0.6, 256 bits)", vendor: "65541", isFallbackAdapter: true },
 *   ["shader-f16"],
 *   {},
 * );
 * assert.equal(lavapipe.measured, "llvmpipe");
 * assert.equal(lavapipe.kind, "cpu");
 * const chromium = gpu.profileOf({ architecture: "swiftshader", vendor: "google" }, [], {});
 * assert.equal(chromium.measured, null); // nobody measured it: plain schedules
 * assert.equal(chromium.kind, "cpu");
 * ```
 */
export function profileOf(
  facts: AdapterFacts,
  features: Iterable<string>,
  limits: Readonly<Record<string, number>>,
): AdapterProfile {
  // Chromium leaves description and device empty (vendor "google", architecture "swiftshader").
  const description = facts.description || facts.device ||
    [facts.vendor, facts.architecture].filter(Boolean).join(" ") || "unknown adapter";
  const names = `${description} ${facts.device ?? ""} ${facts.architecture ?? ""}`;
  const isFallbackAdapter = facts.isFallbackAdapter ?? false;
  const min = facts.subgroupMinSize, max = facts.subgroupMaxSize;
  return {
    description,
    vendor: facts.vendor ?? "",
    architecture: facts.architecture ?? "",
    isFallbackAdapter,
    kind: isFallbackAdapter || SOFTWARE.test(names) ? "cpu" : "gpu",
    features: [...features],
    limits: { ...limits },
    subgroupSizes: min && max ? { min, max } : null,
    measured: /llvmpipe|lavapipe/i.test(names) ? "llvmpipe" : null,
  };
}

/**
 * How an op cuts its work. `adapters` lists the families it was measured on and is chosen
 * on; a plain schedule has none.
 */
export interface Schedule {
  /** "plain", or the family it is tuned for. */
  readonly name: string;
  /** The families it is chosen on (none for the plain schedule). */
  readonly adapters: readonly AdapterFamily[];
  /** Where and how it was measured, and by how much it wins (empty for plain). */
  readonly measured: string;
}

/**
 * The schedule for `profile`: the first of `tuned` measured on its family, else `plain`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpu } from "../../mod.ts";
 * const plain: gpu.Schedule = { name: "plain", adapters: [], measured: "" };
 * const fast: gpu.Schedule = { name: "llvmpipe", adapters: ["llvmpipe"], measured: "2x" };
 * const h100 = gpu.profileOf({ description: "NVIDIA H100" }, [], {});
 * assert.equal(gpu.choose(h100, plain, fast).name, "plain");
 * const cpu = gpu.profileOf({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }, [], {});
 * assert.equal(gpu.choose(cpu, plain, fast).name, "llvmpipe");
 * ```
 */
export function choose<S extends Schedule>(profile: AdapterProfile, plain: S, ...tuned: S[]): S {
  const family = profile.measured;
  return (family && tuned.find((s) => s.adapters.includes(family))) || plain;
}

/**
 * Most iterations one loop of one thread may run, on every adapter: Mesa's llvmpipe
 * silently ends a loop after 65535 iterations (counted across re-entries of the loop within
 * an invocation), and a long-running thread risks a GPU's watchdog. Kernels whose loops
 * grow with the input split their work (more threads, more passes) to stay below it.
 */
export const MAX_LOOP = 16384;
