/**
 * The README's chart: a PNG output of a committed notebook (full run), copied byte for byte
 * into docs/, so that the figure on the README is the one the notebook's code drew.
 * `deno run -A docs/readme_chart.ts` rewrites it after the notebook has been re-run;
 * tests/notebook/readme_chart_test.ts fails while they differ.
 *
 * @module
 */

/** Which chart: the notebook, the chart's title, and the PNG the README shows. */
export const README_CHART = {
  notebook: "notebooks/02_bn_vs_no_bn.ipynb",
  title: "Training loss, same budget",
  png: "docs/bn_vs_no_bn.png",
} as const;

interface Output {
  data?: Record<string, string | string[]>;
}

/**
 * The PNG bytes of the output of `notebook` (its JSON text) whose chart has `title`: in its
 * text form (`Chart "title" (...)`, what bnlab saves) or, in outputs saved before, its SVG.
 */
export function chartPng(notebook: string, title: string): Uint8Array {
  const nb = JSON.parse(notebook) as { cells: { outputs?: Output[] }[] };
  const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join("") : v ?? "");
  const titled = nb.cells.flatMap((c) => c.outputs ?? []).filter((o) =>
    o.data?.["image/png"] && (text(o.data["text/plain"]).startsWith(`Chart "${title}" (`) ||
      text(o.data["image/svg+xml"]).includes(`>${title}</text>`))
  );
  if (titled.length !== 1) {
    throw new Error(`${titled.length} PNG charts titled "${title}" in the notebook; expected 1`);
  }
  const b64 = text(titled[0].data!["image/png"]).replace(/\s/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  const nb = await Deno.readTextFile(new URL(README_CHART.notebook, root));
  const png = chartPng(nb, README_CHART.title);
  await Deno.writeFile(new URL(README_CHART.png, root), png);
  console.log(`${README_CHART.png}: ${png.length} bytes from ${README_CHART.notebook}`);
}
