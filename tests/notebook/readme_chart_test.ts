import { deepEqual, ok, throws } from "node:assert/strict";
import { chartPng, README_CHART } from "../../docs/readme_chart.ts";

const root = new URL("../../", import.meta.url);

Deno.test("the README shows the notebook's chart, byte for byte", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  ok(readme.includes(`](${README_CHART.png})`), `README.md does not show ${README_CHART.png}`);
  const nb = await Deno.readTextFile(new URL(README_CHART.notebook, root));
  const fromNotebook = chartPng(nb, README_CHART.title);
  const committed = await Deno.readFile(new URL(README_CHART.png, root));
  ok(
    fromNotebook.length === committed.length && fromNotebook.every((b, i) => b === committed[i]),
    `${README_CHART.png} differs from the chart in ${README_CHART.notebook}: run deno run -A docs/readme_chart.ts`,
  );
});

Deno.test("chartPng finds one chart by its title, and refuses none or two", () => {
  const svg = (t: string) => `<svg><text>${t}</text></svg>`;
  const out = (t: string, png: string) => ({ data: { "image/svg+xml": svg(t), "image/png": png } });
  const nb = (...outputs: object[]) => JSON.stringify({ cells: [{ outputs }] });
  deepEqual([...chartPng(nb(out("A", "AQI="), out("B", "AwQ=")), "B")], [3, 4]);
  throws(() => chartPng(nb(out("A", "AQI=")), "B"), /0 PNG charts titled "B"/);
  throws(() => chartPng(nb(out("B", "AQI="), out("B", "AQI=")), "B"), /2 PNG charts/);
  // as bnlab saves a chart now: the PNG and its text form
  const saved = (t: string, png: string) => ({
    data: { "image/png": png, "text/plain": `Chart "${t}" (640 x 400 px)` },
  });
  deepEqual([...chartPng(nb(saved("A", "AQI="), saved("B", "AwQ=")), "B")], [3, 4]);
  throws(() => chartPng(nb(saved("Bb", "AQI=")), "B"), /0 PNG charts titled "B"/);
});
