/**
 * What the browser suite must have run: every `@compute` entry point of every .wgsl file in
 * src/ (each must have been created as a pipeline, so compiled by Tint and launched, during
 * the run), and every name in {@link requiredVariants}.
 *
 * @module
 */
import { SCHEDULES } from "../../src/ops/schedules.ts";

/** The `@compute` entry points of a WGSL source, in order (comments are skipped). */
export function computeEntryPoints(wgsl: string): string[] {
  const code = wgsl.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  return [...code.matchAll(/@compute\b[^{;]*?\bfn\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)].map((m) =>
    m[1]
  );
}

/**
 * Every schedule of every op, `op@schedule` (e.g. `batch_norm@plain`), each of which must
 * have run in the browser: from src/ops/schedules.ts, the table of every op's schedules, so
 * that a new schedule is required as soon as it exists. A launch's label names its schedule
 * (`batch_norm.normalize@plain`), and so does its pipeline's.
 */
export function requiredVariants(): string[] {
  return Object.entries(SCHEDULES).flatMap(([op, list]) => list.map((s) => `${op}@${s.name}`));
}

/**
 * The `op@schedule` a pipeline label names (`batch_norm.normalize@plain: normalize(...)` ->
 * `batch_norm@plain`), or null for a kernel with one schedule (no `@`).
 */
export function scheduleOf(label: string): string | null {
  const m = /^([A-Za-z0-9_]+)\.[A-Za-z0-9_]+@([A-Za-z0-9_-]+)/.exec(label);
  return m ? `${m[1]}@${m[2]}` : null;
}

/** What the coverage check found missing. */
export interface CoverageGaps {
  /** `file: entry point` for each entry point never created. */
  entryPoints: string[];
  /** Required variants never marked. */
  variants: string[];
}

/**
 * The entry points of `sources` (file -> WGSL text) and the {@link requiredVariants} that
 * `created` (`file: entry point` keys) and `marked` leave out.
 */
export function coverageGaps(
  sources: Record<string, string>,
  created: ReadonlySet<string>,
  marked: ReadonlySet<string>,
  required: readonly string[] = requiredVariants(),
): CoverageGaps {
  const entryPoints = Object.entries(sources).flatMap(([file, text]) =>
    computeEntryPoints(text).map((e) => `${file}: ${e}`)
  ).filter((k) => !created.has(k));
  return { entryPoints, variants: required.filter((v) => !marked.has(v)) };
}
