// Outputs at the end of a cell survive `jupyter nbconvert --execute` (which saves the
// committed notebooks' outputs): Deno's kernel can report a cell finished while its last
// displays are still queued, and nbconvert then drops them. A cell that prints after a
// training chart and ends with `await live.finish()` must keep every line, and so must one
// that prints after `await show(...)` and ends with `await flushOutput()`. Needs Debian's
// Jupyter and the Deno kernel spec, as tests/notebooks.sh does.
import { deepEqual, equal } from "node:assert/strict";

const root = new URL("../../", import.meta.url);

/** A notebook with one code cell per source, as nbformat 4 writes it. */
function notebook(cells: string[]): string {
  return JSON.stringify({
    cells: cells.map((source) => ({
      cell_type: "code",
      execution_count: null,
      metadata: {},
      outputs: [],
      source,
    })),
    metadata: { kernelspec: { display_name: "Deno", language: "typescript", name: "deno" } },
    nbformat: 4,
    nbformat_minor: 5,
  });
}

Deno.test("the last outputs of a cell survive nbconvert (LiveCurves.finish, show, flushOutput)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const mod = new URL("mod.ts", root).href, plot = new URL("plot.ts", root).href;
    const path = `${dir}/flush.ipynb`;
    await Deno.writeTextFile(
      path,
      notebook([
        `import { flushOutput, print } from "${mod}";\n` +
        `import { lineChart, LiveCurves, show } from "${plot}";\n` +
        `const pause = () => new Promise((r) => setTimeout(r, 20));`,
        // The trainer's pattern: a live chart, the summary lines, then finish.
        `const live = new LiveCurves({ epochs: 2, title: "t" });\n` +
        `for (let k = 0; k < 10; k++) {\n` +
        `  live.onUpdate({ epoch: k / 5, loss: 1 / (k + 1), trainAcc: 0.5 } as never);\n` +
        `  await pause();\n` +
        `}\n` +
        `print("first line");\n` +
        `print("second line");\n` +
        `await live.finish();`,
        `await show(lineChart([{ label: "a", points: [{ x: 1, y: 2 }, { x: 2, y: 3 }] }]));\n` +
        `print("after a chart");\n` +
        `print("last line");\n` +
        `await flushOutput();`,
      ]),
    );
    const run = await new Deno.Command("/usr/bin/jupyter", {
      args: ["nbconvert", "--to", "notebook", "--execute", "--inplace", path],
      env: { PYDEVD_DISABLE_FILE_VALIDATION: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(run.code, 0, new TextDecoder().decode(run.stderr));
    const cells = JSON.parse(await Deno.readTextFile(path)).cells as {
      outputs: { output_type: string; data?: Record<string, string | string[]> }[];
    }[];
    /** Each output of a cell: "chart" for an image, else its text. */
    const outputs = (i: number) =>
      cells[i].outputs.map((o) =>
        o.data?.["image/png"] ? "chart" : [o.data?.["text/plain"] ?? ""].flat().join("")
      );
    deepEqual(outputs(1), ["chart", "first line", "second line"]);
    deepEqual(outputs(2), ["chart", "after a chart", "last line"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
