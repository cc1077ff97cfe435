/**
 * What the browser suite must have run: every `@compute` entry point of every .wgsl file in
 * src/ (each must have been created as a pipeline, so compiled by Tint and launched, during
 * the run), and every name in {@link requiredVariants}.
 *
 * @module
 */

/** The `@compute` entry points of a WGSL source, in order (comments are skipped). */
export function computeEntryPoints(wgsl: string): string[] {
  const code = wgsl.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  return [...code.matchAll(/@compute\b[^{;]*?\bfn\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)].map((m) =>
    m[1]
  );
}

/**
 * The variants of a kernel (named schedules) that must each have run in the browser, as
 * marked by `markVariant(name)` from src/gpu/pipeline.ts. None yet.
 *
 * To require one: have the code that picks the schedule call `markVariant("<op>/<schedule>")`
 * when it launches it, and return that name here (from the table that defines the
 * schedules, so that a new schedule is required as soon as it exists). The runner then fails,
 * naming it, unless some browser test ran it.
 */
export function requiredVariants(): string[] {
  return [];
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
