/**
 * What must hold of an executed notebook's outputs beyond "no cell failed": it shows at
 * least one chart (an SVG or PNG output), has no error output, its first output gives the
 * run's mode, adapter, CPU, commit, date and Deno version (`experimentEnvironment()`), and every cell written to
 * show something (`print(`, `show(`, `.finish()`) has an output: the Deno kernel can lose a
 * cell's last outputs under `jupyter nbconvert --execute` (see `flushOutput`).
 *
 * `deno run --allow-read tests/notebook/outputs.ts NOTEBOOK.ipynb` prints the problem and
 * exits 1, or exits 0 quietly; tests/notebooks.sh runs it on each executed notebook.
 *
 * @module
 */

/** One output of a code cell, as nbformat 4 stores it. */
export interface Output {
  output_type: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}

/** The part of an nbformat 4 notebook that the checks read. */
export interface Notebook {
  cells: { cell_type: string; source?: string | string[]; outputs?: Output[] }[];
}

/** Calls that display something in a cell. */
const DISPLAYS = /\bprint\(|\bshow\(|\.finish\(\)/;

const join = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join("") : t ?? "");

/**
 * The problem with `nb`'s outputs, or undefined when there is none: an error, no chart, a
 * first output without the mode, adapter, CPU, commit, date and Deno version, or a cell that
 * displays something but kept no output.
 */
export function outputsProblem(nb: Notebook): string | undefined {
  const code = nb.cells.filter((c) => c.cell_type === "code");
  const outputs = code.flatMap((c) => c.outputs ?? []);
  const error = outputs.find((o) => o.output_type === "error");
  if (error) return `an error output: ${error.ename}: ${error.evalue}`;
  const chart = outputs.some((o) => o.data && ("image/svg+xml" in o.data || "image/png" in o.data));
  if (!chart) return "no chart in its outputs (no image/svg+xml or image/png output)";
  const first = outputs[0] ? join(outputs[0].text ?? outputs[0].data?.["text/plain"]) : "";
  const full =
    /^mode: .* · adapter: .* · CPU: .* · bnlab ([0-9a-f]{7}\+?|unknown) · \d{4}-\d\d-\d\d \d\d:\d\d UTC · Deno \d+\.\d+\.\d+/;
  if (!full.test(first)) {
    return `its first output does not give the mode, adapter, CPU, commit, date and Deno ` +
      `version (experimentEnvironment()): ${JSON.stringify(first.slice(0, 200))}`;
  }
  const silent = code.findIndex((c) => {
    const src = join(c.source).replace(/^\s*\/\/.*$/gm, ""); // comments do not display
    // A cell that declares a function may display only when the function is called later.
    return (c.outputs ?? []).length === 0 && DISPLAYS.test(src) &&
      !/\bfunction\s+\w+\s*\(/.test(src);
  });
  if (silent >= 0) {
    const line = join(code[silent].source).split("\n").find((l) => l.trim()) ?? "";
    return `code cell ${silent + 1} (${JSON.stringify(line.trim().slice(0, 60))}) displays ` +
      `something but has no output: an output was lost`;
  }
  return undefined;
}

if (import.meta.main) {
  const [path] = Deno.args;
  if (!path) {
    console.error("usage: deno run --allow-read tests/notebook/outputs.ts NOTEBOOK.ipynb");
    Deno.exit(2);
  }
  const problem = outputsProblem(JSON.parse(await Deno.readTextFile(path)));
  if (problem) {
    console.log(problem);
    Deno.exit(1);
  }
}
