// The experiments' charts: finite parts of diverging runs are drawn and marked, log axes,
// panels per layer, image grids with wrong predictions in red, live redraws.
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { createCanvas, Image } from "npm:@napi-rs/canvas@0.1.100";
import { bandsChart, imageGrid, lineChart, runsChart, sweepChart } from "../../src/plot/charts.ts";
import { Chart, LiveChart } from "../../src/plot/display.ts";
import { Plot } from "../../src/plot/render.ts";

/** The polylines stroked `color`, as lists of segments of x coordinates. */
function segments(svg: string, color: string): number[][] {
  const paths = [...svg.matchAll(/<path[^>]*d="([^"]+)"[^>]*>/g)].filter((m) =>
    m[0].includes(`stroke="${color}"`)
  );
  const groups = [...svg.matchAll(new RegExp(`<g[^>]*stroke="${color}"[^>]*>(.*?)</g>`, "g"))]
    .flatMap((g) => [...g[1].matchAll(/d="([^"]+)"/g)]);
  return [...paths, ...groups].flatMap((m) =>
    m[1].split("M").filter(Boolean).map((seg) =>
      [...seg.matchAll(/(?:^|L)(-?[\d.]+),/g)].map((p) => +p[1])
    )
  );
}

/** Decodes a PNG and counts the pixels within 40 of `rgb`. */
async function countColor(png: Uint8Array, rgb: [number, number, number]): Promise<number> {
  const img = new Image();
  const loaded = new Promise<void>((r) => img.onload = () => r());
  img.src = png as unknown as Image["src"];
  await loaded;
  const c = createCanvas(img.width, img.height);
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, img.width, img.height).data;
  let n = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (
      Math.abs(px[i] - rgb[0]) + Math.abs(px[i + 1] - rgb[1]) + Math.abs(px[i + 2] - rgb[2]) < 40
    ) n++;
  }
  return n;
}

Deno.test("lineChart: NaN and Infinity leave gaps, the finite segments are drawn, the first is marked (#8)", () => {
  const chart = lineChart([
    { label: "ok", points: [1, 2, 3, 4].map((x) => ({ x, y: 1 / x })), color: "#1f77b4" },
    {
      label: "diverges",
      color: "#d62728",
      points: [{ x: 1, y: 2 }, { x: 2, y: 1 }, { x: 3, y: Infinity }, { x: 4, y: NaN }, {
        x: 5,
        y: 3,
      }, { x: 6, y: 4 }],
    },
  ]);
  deepEqual(segments(chart.svg, "#1f77b4").map((s) => s.length), [4]);
  deepEqual(segments(chart.svg, "#d62728").map((s) => s.length), [2, 2], "two finite segments");
  equal((chart.svg.match(/>diverged</g) ?? []).length, 1);
  ok(!/NaN|Infinity/.test(chart.svg.replace(/>diverged</g, "")));
});

Deno.test("runsChart compares runs of fit's history by a metric", () => {
  const run = (scale: number) => ({
    updates: [1, 2].flatMap((epoch) =>
      [0.5, 1].map((fraction) => ({
        epoch,
        fraction,
        loss: scale / (epoch + fraction),
        trainAcc: 0.5,
        windowLoss: scale / (epoch + fraction) - 0.1,
      }))
    ),
    epochs: [1, 2].map((epoch) => ({ epoch, loss: 1, trainAcc: 0.5, testAcc: 0.6 + epoch / 10 })),
  });
  const chart = runsChart([{ label: "BN", history: run(1) }, { label: "plain", history: run(2) }]);
  ok(chart.svg.includes(">BN</text>") && chart.svg.includes(">plain</text>"));
  ok(chart.svg.includes("training loss"));
  const test = runsChart([{ label: "BN", history: run(1) }], { metric: "testAcc" });
  ok(test.svg.includes("test accuracy"));
});

Deno.test("sweepChart: a log x axis with plain tick labels and a dot per measured point", () => {
  const chart = sweepChart([0.01, 0.1, 1, 3].map((x) => ({ series: "BN", x, y: 0.8 })));
  equal((chart.svg.match(/<circle/g) ?? []).length, 4);
  ok(chart.svg.includes(">0.01</text>") && !chart.svg.includes(">10m<"), "~g tick format");
});

Deno.test("bandsChart: one panel per layer, a band and a median per series", () => {
  const rows = [0, 1, 2].flatMap((x) =>
    ["conv1", "fc1"].flatMap((panel) =>
      ["BN", "no BN"].map((series) => ({ panel, series, x, lo: -1, mid: 0, hi: 1 }))
    )
  );
  const chart = bandsChart(rows, { xLabel: "step" });
  for (const t of [">conv1<", ">fc1<", ">BN<", ">no BN<"]) ok(chart.svg.includes(t), t);
});

Deno.test("bandsChart with rows: one row of panels per series, each series in its colour", () => {
  const rows = [0, 1, 2].flatMap((x) =>
    ["conv1", "fc1"].flatMap((panel) =>
      ["BN", "no BN"].map((series, i) => ({ panel, series, x, lo: -1 - i, mid: 0, hi: 1 + i }))
    )
  );
  const overlaid = bandsChart(rows, { xLabel: "step" });
  const byRow = bandsChart(rows, { xLabel: "step", yLabel: "input", rows: true });
  // The panel (facet) each band is drawn in: overlaid, two bands share each of two panels;
  // by row, each of four panels holds one band.
  const bandsPerPanel = (svg: string) => {
    const n = new Map<string, number>();
    for (const m of svg.matchAll(/<g transform="(translate\([^)]*\))" fill="rgb\(/g)) {
      n.set(m[1], (n.get(m[1]) ?? 0) + 1);
    }
    return [...n.values()];
  };
  deepEqual(bandsPerPanel(overlaid.svg), [2, 2]);
  deepEqual(bandsPerPanel(byRow.svg), [1, 1, 1, 1]);
  for (const t of [">conv1<", ">fc1<", ">BN<", ">no BN<", ">input"]) ok(byRow.svg.includes(t), t);
  ok(byRow.size.height > overlaid.size.height, "taller: a row per series");
  ok(byRow.svg.includes('stroke="#1f77b4"') && byRow.svg.includes('stroke="#ff7f0e"'));
});

Deno.test("imageGrid: images with labels, wrong predictions in red, in SVG and PNG", async () => {
  const pixels = new Float32Array(3 * 16).map((_, i) => (i % 16) / 15);
  const grid = imageGrid(pixels, {
    rows: 4,
    cols: 4,
    labels: ["bag", "bag", "coat"],
    predictions: ["bag", "shirt", "coat"],
    scale: 4,
  });
  equal((grid.svg.match(/data:image\/png;base64,/g) ?? []).length, 3);
  ok(grid.svg.includes('fill="#d62728">shirt</text>'), "the wrong prediction is red");
  const png = await grid.png();
  ok(await countColor(png, [0xd6, 0x27, 0x28]) > 20, "red caption pixels");
  ok(await countColor(png, [0, 0, 0]) > 100, "dark image pixels (ink)");
  throws(
    () => imageGrid(new Float32Array(10), { rows: 4, cols: 4 }),
    /not a whole number of 4x4 images/,
  );
});

Deno.test("LiveChart keeps the last chart, throttles redraws, and finishes with it", async () => {
  const live = new LiveChart({ minIntervalMs: 60_000 });
  live.update({ marks: [Plot.lineY([1, 2])] });
  equal(live.pending, false, "the first update draws");
  live.update({ marks: [Plot.lineY([1, 2, 3])] });
  equal(live.pending, true, "a second one within the interval waits");
  equal(await live.finish(), undefined, "finish returns nothing (no second display in a cell)");
  const final = live.chart;
  ok(final instanceof Chart);
  equal(live.pending, false);
  const bundle = await final.bundle();
  deepEqual(Object.keys(bundle).sort(), ["image/png", "text/plain"]);
  ok(atob(bundle["image/png"]).startsWith("\x89PNG"));
  equal(bundle["text/plain"], "Chart (640 x 400 px)");
  deepEqual(final.metadata, { "image/png": { width: 640, height: 400 } });
});

Deno.test("a long legend wraps into rows inside the chart's width, and the plot moves down", async () => {
  const { plotSvg } = await import("../../src/plot/render.ts");
  const items = Array.from(
    { length: 6 },
    (_, i) => ({ label: `channel ${i}, population`, color: "#123456" }),
  );
  const opts = { width: 500, marks: [Plot.lineY([1, 2, 3])] };
  const svg = plotSvg(opts, { legend: items });
  const labels = [...svg.matchAll(/<text([^>]*)>channel \d, population<\/text>/g)].map((m) => ({
    x: +m[1].match(/ x="([\d.]+)"/)![1],
    y: +m[1].match(/ y="([\d.]+)"/)![1],
  }));
  equal(labels.length, 6);
  const rows = new Set(labels.map((l) => l.y));
  ok(
    rows.size >= 3,
    `6 labels of ~160 px with swatches in a 500 px chart take 3 rows, got ${rows.size}`,
  );
  // 21 characters at the renderer's width estimate (10 px font, 0.62 em per character)
  for (const { x } of labels) {
    ok(x + 21 * 10 * 0.62 <= 500, `label at x=${x} runs past the right edge`);
  }
  // The plot area starts below the last legend row: its frame moved down by the extra rows.
  const oneRow = plotSvg(opts, { legend: items.slice(0, 1) });
  const height = (s: string) => +s.match(/^<svg[^>]*height="([\d.]+)"/)![1];
  equal(height(svg) - height(oneRow), (rows.size - 1) * 20);
});

Deno.test("a log-x sweep puts its ticks at the swept values; xTicks overrides", () => {
  const points = [2, 8, 32, 128, 512].map((x) => ({ series: "BN", x, y: 0.5 }));
  const labels = (svg: string) =>
    [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]).filter((t) =>
      /^\d+$/.test(t)
    );
  deepEqual(labels(sweepChart(points).svg), ["2", "8", "32", "128", "512"]);
  deepEqual(labels(sweepChart(points, { xTicks: [10, 100] }).svg), ["10", "100"]);
});
