/**
 * Where an experiment runs: the mode (a notebook's full experiment, or its quick version
 * with `BNLAB_QUICK=1`, which the test suite sets), the WebGPU adapter and the CPU, in one
 * line for the first output of a notebook, since every figure depends on them.
 *
 * @module
 */
import { adapterInfo } from "../gpu/device.ts";
import { print as printLine } from "../notebook/print.ts";

/** What {@link experimentEnvironment} reports. */
export interface ExperimentEnvironment {
  /** True with `BNLAB_QUICK=1`: small subsets and few steps. */
  quick: boolean;
  /** The WebGPU adapter's name, with "(software)" for a fallback adapter. */
  adapter: string;
  /** The CPU model (from /proc/cpuinfo; "unknown CPU" where it cannot be read). */
  cpu: string;
  /** All of it in one line: `mode: full · adapter: ... · CPU: ...`. */
  line: string;
}

async function cpuModel(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    const name = info.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim();
    const cores = info.match(/^processor\s*:/gm)?.length;
    return name ? `${name}${cores ? `, ${cores} cores` : ""}` : "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

/**
 * The mode, adapter and CPU of this run; `print` (default true) writes the line.
 *
 * @example
 * ```ts
 * import { experimentEnvironment } from "./environment.ts";
 * const env = await experimentEnvironment({ print: false });
 * console.log(env.line.startsWith("mode: ")); // true
 * ```
 */
export async function experimentEnvironment(
  { print = true }: { print?: boolean } = {},
): Promise<ExperimentEnvironment> {
  let quick = false;
  try {
    quick = Deno.env.get("BNLAB_QUICK") === "1";
  } catch { /* no --allow-env: the full experiment */ }
  const info = await adapterInfo();
  const adapter = `${info.description}${info.isFallbackAdapter ? " (software)" : ""}`;
  const cpu = await cpuModel();
  const line = `mode: ${quick ? "quick (BNLAB_QUICK=1: small subsets, few steps)" : "full"} · ` +
    `adapter: ${adapter} · CPU: ${cpu}`;
  if (print) printLine(line);
  return { quick, adapter, cpu, line };
}
