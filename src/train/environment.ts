/**
 * Where and when an experiment runs: the mode (a notebook's full experiment, or its quick
 * version with `BNLAB_QUICK=1`, which the test suite sets), the WebGPU adapter, the CPU, the
 * library's commit, the date and Deno's version, in one line for the first output of a
 * notebook, since every figure depends on them.
 *
 * @module
 */
import { adapterInfo } from "../gpu/device.ts";
import { flushOutput, print as printLine } from "../notebook/print.ts";

/** What {@link experimentEnvironment} reports. */
export interface ExperimentEnvironment {
  /** True with `BNLAB_QUICK=1`: small subsets and few steps. */
  quick: boolean;
  /** The WebGPU adapter's name, with "(software)" for a fallback adapter. */
  adapter: string;
  /** The CPU model (from /proc/cpuinfo; "unknown CPU" where it cannot be read). */
  cpu: string;
  /**
   * The library's git commit (7 digits), `+` when its code (src/ and the entry points)
   * differs from that commit, or "unknown" outside a git checkout (a published package).
   */
  commit: string;
  /** When the run started, `YYYY-MM-DD HH:MM UTC`. */
  date: string;
  /** Deno's version. */
  deno: string;
  /**
   * All of it in one line:
   * `mode: full · adapter: ... · CPU: ... · bnlab 1a2b3c4 · 2026-12-07 02:00 UTC · Deno 2.9.6`.
   */
  line: string;
}

/** The repository the library runs from (this file's, when it is a local file). */
const ROOT = new URL("../../", import.meta.url);

async function git(args: string[]): Promise<{ ok: boolean; out: string }> {
  const out = await new Deno.Command("git", {
    args: ["-C", ROOT.pathname, ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return { ok: out.success, out: new TextDecoder().decode(out.stdout).trim() };
}

/** The library's commit, `+` if its code has changes since; "unknown" where git cannot say. */
async function libraryCommit(): Promise<string> {
  if (ROOT.protocol !== "file:") return "unknown";
  try {
    const head = await git(["rev-parse", "--short=7", "HEAD"]);
    if (!head.ok || !head.out) return "unknown";
    const code = ["src", "mod.ts", "train.ts", "plot.ts"];
    const clean = await git(["diff", "--quiet", "HEAD", "--", ...code]);
    return clean.ok ? head.out : `${head.out}+`;
  } catch {
    return "unknown"; // no git, or no --allow-run
  }
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
 * The mode, adapter, CPU, commit, date and Deno version of this run; `print` (default true)
 * writes the line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { experimentEnvironment } from "../../train.ts";
 * const env = await experimentEnvironment({ print: false });
 * assert.match(env.line, /^mode: (full|quick)/);
 * assert.match(env.commit, /^([0-9a-f]{7}\+?|unknown)$/);
 * assert.ok(env.line.endsWith(`· Deno ${Deno.version.deno}`));
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
  const commit = await libraryCommit();
  const date = new Date().toISOString().replace("T", " ").slice(0, 16) + " UTC";
  const deno = Deno.version.deno;
  const line = `mode: ${quick ? "quick (BNLAB_QUICK=1: small subsets, few steps)" : "full"} · ` +
    `adapter: ${adapter} · CPU: ${cpu} · bnlab ${commit} · ${date} · Deno ${deno}`;
  if (print) {
    printLine(line);
    await flushOutput(); // a cell that ends here keeps the line (see flushOutput)
  }
  return { quick, adapter, cpu, commit, date, deno, line };
}
