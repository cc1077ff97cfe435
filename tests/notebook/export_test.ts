// Charts are seen wherever a notebook is read: in nbconvert's HTML export (Debian 12's 6.5,
// whose cleaner drops every element of an SVG output), and in viewers that drop SVG. bnlab
// saves a chart as its PNG with its size in the output's metadata (src/plot/display.ts).
// Needs Debian's Jupyter and the Deno kernel spec, as tests/notebooks.sh does.
import { equal, ok } from "node:assert/strict";

const root = new URL("../../", import.meta.url);
const JUPYTER = "/usr/bin/jupyter";

interface Output {
  output_type: string;
  data?: Record<string, string | string[]>;
  metadata?: Record<string, Record<string, unknown>>;
}

const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join("") : v ?? "");

/** Runs jupyter with `args`; returns its stdout, or throws with its stderr. */
async function jupyter(args: string[]): Promise<string> {
  let out;
  try {
    out = await new Deno.Command(JUPYTER, {
      args,
      env: { PYDEVD_DISABLE_FILE_VALIDATION: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(
      `${JUPYTER} could not run (${e}): apt-get install jupyter-nbconvert python3-nbclient ` +
        `jupyter-client jupyter-notebook`,
    );
  }
  if (out.code !== 0) {
    throw new Error(`jupyter ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** The outputs of a notebook that hold a chart (an image). */
function chartOutputs(notebook: string): Output[] {
  const nb = JSON.parse(notebook) as { cells: { outputs?: Output[] }[] };
  return nb.cells.flatMap((c) => c.outputs ?? []).filter((o) =>
    o.data && ("image/png" in o.data || "image/svg+xml" in o.data)
  );
}

/**
 * What the HTML export draws: each `<img>` of a PNG data URL with data, and each inline
 * `<svg>` that still holds a drawing element (the cleaner leaves an SVG's text, not its marks).
 */
function drawables(html: string): { pngs: { width: number | null }[]; svgs: number } {
  const pngs = [...html.matchAll(/<img\s[^>]*src="data:image\/png;base64,([^"]*)"[^>]*>/g)]
    .filter((m) => m[1].length > 100)
    .map((m) => {
      const w = m[0].match(/\swidth="?(\d+)/);
      return { width: w ? +w[1] : null };
    });
  const svgs = [...html.matchAll(/<svg[\s>][\s\S]*?<\/svg>/g)]
    .filter((m) => /<(path|line|rect|circle|polyline|polygon|image)\b/.test(m[0])).length;
  return { pngs, svgs };
}

const notebooks = [...Deno.readDirSync(new URL("notebooks/", root))]
  .map((e) => e.name).filter((n) => n.endsWith(".ipynb")).sort();

for (const name of notebooks) {
  Deno.test(`notebooks/${name}: every chart is drawn in nbconvert's HTML export`, async () => {
    const path = new URL(`notebooks/${name}`, root).pathname;
    const charts = chartOutputs(await Deno.readTextFile(path));
    ok(charts.length > 0, "the notebook shows no chart");
    const html = await jupyter(["nbconvert", "--to", "html", "--stdout", path]);
    const drawn = drawables(html);
    equal(
      drawn.pngs.length + drawn.svgs,
      charts.length,
      `${charts.length} chart outputs, ${drawn.pngs.length} PNG images and ${drawn.svgs} SVGs ` +
        `with marks in the export: ${
          charts.filter((o) => o.data && "image/svg+xml" in o.data).length
        } outputs offer an SVG, which the export prefers and its cleaner empties`,
    );
    // Shown at the chart's size, not at the PNG's (twice it).
    for (const [i, o] of charts.entries()) {
      const width = o.metadata?.["image/png"]?.width;
      ok(typeof width === "number", `chart output ${i} has no display width in its metadata`);
      equal(drawn.pngs[i]?.width, width, `chart output ${i}: width in the export`);
    }
  });
}

Deno.test("a chart shown by a kernel run is saved as a PNG at its size, and exported", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plot = new URL("plot.ts", root).href;
    const path = `${dir}/charts.ipynb`;
    const cell = (source: string) => ({
      cell_type: "code",
      execution_count: null,
      metadata: {},
      outputs: [],
      source,
    });
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        cells: [
          cell(`import { Chart, LiveChart, Plot, show } from "${plot}";`),
          cell(
            `await show({ width: 300, height: 200, title: "shown", marks: [Plot.lineY([1, 3, 2])] });`,
          ),
          cell(
            `const live = new LiveChart({ minIntervalMs: 0 });\n` +
              `for (let k = 2; k < 6; k++) live.update({ width: 320, marks: [Plot.lineY([...Array(k).keys()])] });\n` +
              `await live.finish();`,
          ),
        ],
        metadata: { kernelspec: { display_name: "Deno", language: "typescript", name: "deno" } },
        nbformat: 4,
        nbformat_minor: 5,
      }),
    );
    await jupyter(["nbconvert", "--to", "notebook", "--execute", "--inplace", path]);
    const nb = JSON.parse(await Deno.readTextFile(path)) as { cells: { outputs: Output[] }[] };
    const [shown, live] = nb.cells.slice(1).map((c) => c.outputs);
    for (
      const [outputs, width, what] of [[shown, 300, "show"], [live, 320, "LiveChart"]] as const
    ) {
      equal(outputs.length, 1, `${what}: one output`);
      const o = outputs[0];
      ok(!("image/svg+xml" in o.data!), `${what}: no SVG saved`);
      ok(atob(text(o.data!["image/png"]).slice(0, 8)).startsWith("\x89PNG"), `${what}: a PNG`);
      equal(o.metadata?.["image/png"]?.width, width, `${what}: the chart's width`);
    }
    equal(text(shown[0].data!["text/plain"]), 'Chart "shown" (300 x 200 px)');
    const drawn = drawables(await jupyter(["nbconvert", "--to", "html", "--stdout", path]));
    equal(drawn.svgs, 0);
    equal(drawn.pngs.map((p) => p.width).join(), "300,320", "the two charts, at their sizes");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every code line of the notebooks fits 100 columns (an exported page cuts longer ones)", async () => {
  const long: string[] = [];
  for (const name of notebooks) {
    const nb = JSON.parse(await Deno.readTextFile(new URL(`notebooks/${name}`, root))) as {
      cells: { cell_type: string; source: string | string[] }[];
    };
    nb.cells.forEach((c, i) => {
      if (c.cell_type !== "code") return;
      text(c.source).split("\n").forEach((line, j) => {
        if (line.length > 100) long.push(`${name} cell ${i + 1} line ${j + 1}: ${line.length}`);
      });
    });
  }
  equal(long.join("\n"), "", "deno fmt --no-config --line-width 100 notebooks/*.ipynb wraps them");
});
