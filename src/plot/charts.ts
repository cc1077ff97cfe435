/**
 * The few charts the lecture's experiments repeat, each a short use of Observable Plot
 * through `render.ts`: lines of several series (runs compared, a sweep of a parameter on
 * a log axis), percentile bands over time in small multiples (one panel per layer), and
 * a grid of images with their labels and predictions.
 *
 * A diverging run is exactly when people look: non-finite values (NaN, infinities, and
 * non-positive values on a log axis) are drawn as gaps, the first one of each series is
 * marked "diverged", and the finite parts are always drawn.
 *
 * @module
 */
import { createCanvas } from "npm:@napi-rs/canvas@0.1.100";
import { type LegendItem, Plot } from "./render.ts";
import { Chart, encodeBase64 } from "./display.ts";

/** d2l's (matplotlib's) colour cycle. */
export const PALETTE: readonly string[] = Object.freeze([
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
]);

/** A point of a series. */
export interface XY {
  /** Position on the x axis. */
  x: number;
  /** Value; NaN and infinities are drawn as gaps. */
  y: number;
}

/** One line of a {@link lineChart}. */
export interface Series {
  /** Legend text. */
  label: string;
  /** The points, in x order. */
  points: readonly XY[];
  /** Stroke colour. Default: the next of {@link PALETTE}. */
  color?: string;
  /** SVG dash pattern, e.g. `"6,4"`. Default solid. */
  dash?: string;
}

/** Options of the line charts. */
export interface LineChartOptions {
  /** Title above the chart. */
  title?: string;
  /** A second line under the title. */
  subtitle?: string;
  /** Width in CSS pixels. Default 520. */
  width?: number;
  /** Height in CSS pixels. Default 300. */
  height?: number;
  /** Label of the x axis. */
  xLabel?: string;
  /** Label of the y axis. */
  yLabel?: string;
  /** A logarithmic x axis. Default false. */
  logX?: boolean;
  /** A logarithmic y axis. Default false. */
  logY?: boolean;
  /** Fixed y domain [lo, hi]; default: the finite data. */
  yDomain?: [number, number];
  /** Fixed x domain [lo, hi]; default: the data. */
  xDomain?: [number, number];
  /** Draw a dot at each point (sweeps). Default false. */
  dots?: boolean;
  /**
   * Tick values of the x axis. Default: Plot's, except on a log x axis with at most 12
   * distinct x values (a sweep over learning rates or batch sizes): those values.
   */
  xTicks?: readonly number[];
}

/** Ticks 1, 2, 5 x 10^k in [lo, hi] (only the powers of 10 if that makes more than 10). */
function oneTwoFive(lo: number, hi: number): number[] {
  const all: number[] = [];
  for (let k = Math.floor(Math.log10(lo)); 10 ** k <= hi; k++) {
    for (const m of [1, 2, 5]) {
      const t = +(m * 10 ** k).toPrecision(6);
      if (t >= lo && t <= hi) all.push(t);
    }
  }
  return all.length > 10 ? all.filter((t) => Number.isInteger(Math.log10(t))) : all;
}

/** y as drawn: NaN (a gap) where it cannot be drawn on this axis. */
function drawable(y: number, log: boolean): number {
  return Number.isFinite(y) && (!log || y > 0) ? y : NaN;
}

/**
 * Several series as lines on one chart, with a legend. Non-finite values leave gaps; the
 * first in each series gets a "diverged" mark in the series' colour.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineChart } from "../../plot.ts";
 * const chart = lineChart([
 *   { label: "BN", points: [{ x: 1, y: 0.9 }, { x: 2, y: 0.5 }] },
 *   { label: "no BN", points: [{ x: 1, y: 2.3 }, { x: 2, y: NaN }] },
 * ], { xLabel: "epoch", yLabel: "loss" });
 * assert.ok(chart.svg.includes(">BN</text>") && chart.svg.includes("diverged"));
 * ```
 */
export function lineChart(series: readonly Series[], opts: LineChartOptions = {}): Chart {
  const { width = 520, height = 300, logX = false, logY = false, dots = false } = opts;
  const styled = series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length] }));
  const xs = styled.flatMap((s) => s.points.map((p) => p.x))
    .filter((x) => Number.isFinite(x) && (!logX || x > 0));
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  // A log x axis is drawn as a linear axis of log10(x): Plot's log scale ignores a tick
  // format function and blanks labels it finds crowded (d3's log tickFormat), which hid
  // 8 and 512 of a batch-size sweep.
  const lx = (x: number) => (logX ? Math.log10(x) : x);
  const tickValues = opts.xTicks ??
    (logX
      ? (distinct.length <= 12 ? distinct : oneTwoFive(distinct[0], distinct.at(-1)!))
      : undefined);
  const ticks = tickValues ? { ticks: tickValues.filter((t) => !logX || t > 0).map(lx) } : {};
  const marks: Plot.Markish[] = [
    Plot.gridX({ stroke: "#e8e8e8", strokeOpacity: 1, ...ticks }),
    Plot.gridY({ stroke: "#e8e8e8", strokeOpacity: 1 }),
  ];
  const diverged: { x: number; color: string }[] = [];
  for (const s of styled) {
    const pts = s.points.filter((p) => Number.isFinite(p.x) && (!logX || p.x > 0))
      .map((p) => ({ x: lx(p.x), y: drawable(p.y, logY), raw: p.y }));
    const bad = pts.find((p) => Number.isNaN(p.y) && !(logY && Number.isFinite(p.raw)));
    if (bad) diverged.push({ x: bad.x, color: s.color });
    const style = { stroke: s.color, strokeWidth: 1.6, strokeDasharray: s.dash ?? "none" };
    marks.push(Plot.line(pts, { x: "x", y: "y", ...style }));
    // Points with no finite neighbour draw no segment; sweeps want every point anyway.
    const lone = pts.filter((p, i) =>
      !Number.isNaN(p.y) && (dots || (Number.isNaN(pts[i - 1]?.y ?? NaN) &&
        Number.isNaN(pts[i + 1]?.y ?? NaN)))
    );
    if (lone.length) marks.push(Plot.dot(lone, { x: "x", y: "y", fill: s.color, r: 2.5 }));
  }
  const middle = (lx(Math.min(...xs)) + lx(Math.max(...xs))) / 2;
  for (const d of diverged) {
    // The label on the side of the rule with more room.
    const right = d.x <= middle;
    marks.push(Plot.ruleX([d.x], { stroke: d.color, strokeDasharray: "2,3" }));
    marks.push(Plot.text([d.x], {
      x: (v: number) => v,
      frameAnchor: "top",
      text: () => "diverged",
      fill: d.color,
      textAnchor: right ? "start" : "end",
      dx: right ? 3 : -3,
      dy: 4 + 12 * diverged.indexOf(d),
    }));
  }
  const legend = styled.map((s) => ({ label: s.label, color: s.color, dash: s.dash }));
  return Chart.plot({
    width,
    height,
    marginTop: 16,
    marginLeft: 56,
    marginRight: 16,
    title: opts.title,
    subtitle: opts.subtitle,
    x: {
      label: opts.xLabel ?? null,
      type: "linear",
      ...(logX ? { tickFormat: (v: number) => `${+(10 ** v).toPrecision(6)}` } : {}),
      ...ticks,
      ...(opts.xDomain ? { domain: opts.xDomain.map(lx) } : {}),
    },
    y: {
      label: opts.yLabel ?? null,
      labelAnchor: "center",
      type: logY ? "log" : "linear",
      ...(logY ? { tickFormat: "~g" } : {}),
      ...(opts.yDomain ? { domain: opts.yDomain } : {}),
    },
    marks,
  }, { legend });
}

/** What {@link runsChart} reads of a run: `fit`'s history. */
export interface RunHistory {
  /** Mid-epoch readings. */
  updates: readonly {
    epoch: number;
    fraction: number;
    loss: number;
    trainAcc: number;
    windowLoss?: number;
    windowAcc?: number;
  }[];
  /** End-of-epoch readings. */
  epochs: readonly { epoch: number; loss: number; trainAcc: number; testAcc: number }[];
}

/** A metric of {@link runsChart}: the epoch's running mean, the last window's, or test accuracy. */
export type RunMetric = "loss" | "trainAcc" | "windowLoss" | "windowAcc" | "testAcc";

const METRIC_LABEL: Record<RunMetric, string> = {
  loss: "training loss (epoch mean so far)",
  trainAcc: "training accuracy (epoch so far)",
  windowLoss: "training loss",
  windowAcc: "training accuracy",
  testAcc: "test accuracy",
};

/**
 * Several training runs compared on one chart: one metric against epochs (fractional
 * epochs for mid-epoch readings; whole epochs for test accuracy), one line per run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runsChart } from "../../plot.ts";
 * const run = (loss: number) => ({
 *   updates: [{ epoch: 1, fraction: 1, loss, trainAcc: 0.8 }],
 *   epochs: [{ epoch: 1, loss, trainAcc: 0.8, testAcc: 0.7 }],
 * });
 * const chart = runsChart([{ label: "lr 1", history: run(0.5) }, { label: "lr 3", history: run(Infinity) }], { metric: "loss" });
 * assert.ok(chart.svg.includes("lr 3") && chart.svg.includes("diverged"));
 * ```
 */
export function runsChart(
  runs: readonly { label: string; history: RunHistory; color?: string; dash?: string }[],
  opts: LineChartOptions & { metric?: RunMetric } = {},
): Chart {
  const { metric = "windowLoss", ...rest } = opts;
  const series = runs.map((r) => ({
    label: r.label,
    color: r.color,
    dash: r.dash,
    points: metric === "testAcc"
      ? r.history.epochs.map((e) => ({ x: e.epoch, y: e.testAcc }))
      : r.history.updates.map((u) => ({
        x: u.epoch - 1 + u.fraction,
        y: metric === "windowLoss"
          ? u.windowLoss ?? u.loss
          : metric === "windowAcc"
          ? u.windowAcc ?? u.trainAcc
          : u[metric],
      })),
  }));
  return lineChart(series, { xLabel: "epoch", yLabel: METRIC_LABEL[metric], ...rest });
}

/** One measured point of a sweep. */
export interface SweepPoint {
  /** Which curve (e.g. "LeNet + BN"). */
  series: string;
  /** The swept parameter (e.g. the learning rate). */
  x: number;
  /** The result (e.g. final test accuracy); NaN or infinite for a diverged run. */
  y: number;
}

/**
 * A sweep: a result against a parameter, one curve per series, dots at the measured
 * points, the x axis logarithmic by default (learning rates, batch sizes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sweepChart } from "../../plot.ts";
 * const chart = sweepChart([
 *   { series: "BN", x: 0.1, y: 0.85 }, { series: "BN", x: 1, y: 0.88 },
 *   { series: "plain", x: 0.1, y: 0.80 }, { series: "plain", x: 1, y: NaN },
 * ], { xLabel: "learning rate", yLabel: "test accuracy" });
 * assert.ok(chart.svg.includes("learning rate") && chart.svg.includes("<circle"));
 * ```
 */
export function sweepChart(points: readonly SweepPoint[], opts: LineChartOptions = {}): Chart {
  const names = [...new Set(points.map((p) => p.series))];
  const series = names.map((label) => ({
    label,
    points: points.filter((p) => p.series === label).map(({ x, y }) => ({ x, y }))
      .sort((a, b) => a.x - b.x),
  }));
  return lineChart(series, { logX: true, dots: true, ...opts });
}

/** One time step of a percentile band. */
export interface BandPoint {
  /** Panel (e.g. the layer's name); one panel per distinct value. */
  panel?: string;
  /** Series within a panel (e.g. "BN" and "no BN"). */
  series?: string;
  /** Time (e.g. the step). */
  x: number;
  /** Lower percentile (e.g. the 15th). */
  lo: number;
  /** Middle (e.g. the median). */
  mid: number;
  /** Upper percentile (e.g. the 85th). */
  hi: number;
}

/** A light tint of a `#rrggbb` colour (Skia's SVG renderer ignores fill opacity). */
function tint(color: string, amount = 0.75): string {
  const c = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
  return `rgb(${c.map((v) => Math.round(v + (255 - v) * amount)).join(",")})`;
}

/**
 * Percentile bands over time (Ioffe & Szegedy's Figure 1: the 15th, 50th and 85th
 * percentiles of an activation), as small multiples: one panel per `panel`, a band and a
 * median line per `series` within each; with `rows`, one row of panels per series
 * instead, so that no band hides another (the y scale shared by every panel).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bandsChart } from "../../plot.ts";
 * const rows = [0, 1, 2].flatMap((x) =>
 *   ["layer 1", "layer 2"].map((panel) => ({ panel, x, lo: -1 - x, mid: 0, hi: 1 + x }))
 * );
 * const chart = bandsChart(rows, { xLabel: "step" });
 * assert.ok(chart.svg.includes("layer 2"));
 * ```
 */
export function bandsChart(
  rows: readonly BandPoint[],
  opts: LineChartOptions & {
    panelWidth?: number;
    /** One row of panels per series (named at the right), not overlaid. Default false. */
    rows?: boolean;
  } = {},
): Chart {
  const names = [...new Set(rows.map((r) => r.series ?? ""))];
  const panels = [...new Set(rows.map((r) => r.panel ?? ""))];
  const color = (s: string) => PALETTE[names.indexOf(s) % PALETTE.length];
  const data = rows.map((r) => ({
    ...r,
    panel: r.panel ?? "",
    series: r.series ?? "",
    lo: drawable(r.lo, false),
    mid: drawable(r.mid, false),
    hi: drawable(r.hi, false),
  }));
  const marks: Plot.Markish[] = [Plot.gridY({ stroke: "#e8e8e8", strokeOpacity: 1 })];
  const own = (s: string) => data.filter((d) => d.series === s);
  // All bands first, then all lines: no band hides another series' median.
  const { rows: byRow = false } = opts;
  const fy = byRow ? { fy: "series" } : {};
  for (const s of names) {
    marks.push(
      Plot.areaY(own(s), { x: "x", y1: "lo", y2: "hi", fx: "panel", ...fy, fill: tint(color(s)) }),
    );
  }
  for (const s of names) {
    const line = { x: "x", fx: "panel", ...fy, stroke: color(s) };
    marks.push(Plot.line(own(s), { ...line, y: "mid", strokeWidth: 1.5 }));
    marks.push(Plot.line(own(s), { ...line, y: "lo", strokeWidth: 0.6, strokeDasharray: "3,2" }));
    marks.push(Plot.line(own(s), { ...line, y: "hi", strokeWidth: 0.6, strokeDasharray: "3,2" }));
  }
  const legend: LegendItem[] = names.length > 1 || names[0]
    ? names.map((s) => ({ label: s, color: color(s), symbol: "square" }))
    : [];
  const { panelWidth = 220 } = opts;
  const height = opts.height ?? (byRow ? 60 + 140 * names.length : 260);
  // Room at the right for the row names: about 6 px a character at the 10 px font.
  const rowNames = byRow ? 6 * Math.max(...names.map((s) => s.length)) : 0;
  return Chart.plot({
    width: opts.width ?? Math.max(360, 60 + panelWidth * panels.length) + rowNames,
    height,
    marginTop: 28,
    marginLeft: 56,
    ...(byRow ? { marginRight: 16 + rowNames } : {}),
    title: opts.title,
    subtitle: opts.subtitle,
    fx: { label: null, domain: panels },
    ...(byRow ? { fy: { label: null, domain: names } } : {}),
    x: { label: opts.xLabel ?? null },
    y: {
      label: opts.yLabel ?? null,
      labelAnchor: "center",
      ...(opts.yDomain ? { domain: opts.yDomain } : {}),
    },
    marks,
  }, { legend });
}

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /** Image height in pixels. Default 28. */
  rows?: number;
  /** Image width in pixels. Default 28. */
  cols?: number;
  /** Images per row of the grid. Default 8. */
  columns?: number;
  /** Screen pixels per image pixel. Default 2. */
  scale?: number;
  /** The true label of each image (a caption). */
  labels?: readonly string[];
  /** The predicted label of each image: a second caption, red where it differs. */
  predictions?: readonly string[];
  /** Title above the grid. */
  title?: string;
}

/**
 * Grey images (values in [0, 1], image after image) in a grid, each with its label and,
 * if given, its prediction (red when wrong), as d2l's `show_images`. The SVG embeds each
 * image as a PNG; the chart's PNG is drawn by Skia directly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { imageGrid } from "../../plot.ts";
 * const pixels = new Float32Array(2 * 4).map((_, i) => (i % 4) / 3);
 * const grid = imageGrid(pixels, { rows: 2, cols: 2, labels: ["shirt", "bag"], predictions: ["shirt", "coat"] });
 * assert.ok(grid.svg.includes("data:image/png;base64,") && grid.svg.includes(">coat</text>"));
 * ```
 */
export function imageGrid(pixels: ArrayLike<number>, opts: ImageGridOptions = {}): Chart {
  const { rows = 28, cols = 28, columns = 8, scale = 2, labels, predictions, title } = opts;
  const size = rows * cols;
  const n = Math.floor(pixels.length / size);
  if (n * size !== pixels.length || n === 0) {
    throw new Error(
      `imageGrid: ${pixels.length} values are not a whole number of ${rows}x${cols} images`,
    );
  }
  const captions = (labels ? 1 : 0) + (predictions ? 1 : 0);
  const cellW = Math.max(cols * scale, 56) + 8, cellH = rows * scale + 6 + captions * 12;
  const top = title ? 24 : 4;
  const width = Math.min(n, columns) * cellW + 8, height = top + Math.ceil(n / columns) * cellH + 4;
  const layout = Array.from({ length: n }, (_, i) => ({
    x: 8 + (i % columns) * cellW,
    y: top + Math.floor(i / columns) * cellH,
    label: labels?.[i],
    pred: predictions?.[i],
  }));
  const images = Array.from({ length: n }, (_, i) => greyPng(pixels, i * size, rows, cols));
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts = layout.map((c, i) => {
    const w = cols * scale, h = rows * scale;
    let s = `<image x="${c.x}" y="${c.y}" width="${w}" height="${h}" ` +
      `style="image-rendering:pixelated" href="data:image/png;base64,${encodeBase64(images[i])}"/>`;
    let y = c.y + h + 11;
    if (c.label !== undefined) {
      s += `<text x="${c.x}" y="${y}">${esc(c.label)}</text>`;
      y += 12;
    }
    if (c.pred !== undefined) {
      const wrong = c.label !== undefined && c.pred !== c.label;
      s += `<text x="${c.x}" y="${y}" fill="${wrong ? "#d62728" : "#2ca02c"}">${
        esc(c.pred)
      }</text>`;
    }
    return s;
  });
  const head = title
    ? `<text x="8" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`
    : "";
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif" font-size="10">` +
    `<rect width="100%" height="100%" fill="white"/>${head}${parts.join("")}</svg>`;
  return new Chart(svg, {
    title,
    png: (pngScale = 2) => {
      const canvas = createCanvas(width * pngScale, height * pngScale);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "white";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.scale(pngScale, pngScale);
      ctx.imageSmoothingEnabled = false;
      ctx.font = "10px DejaVu Sans, sans-serif";
      layout.forEach((c, i) => {
        const img = greyCanvas(pixels, i * size, rows, cols);
        ctx.drawImage(img, c.x, c.y, cols * scale, rows * scale);
        let y = c.y + rows * scale + 11;
        if (c.label !== undefined) {
          ctx.fillStyle = "black";
          ctx.fillText(c.label, c.x, y);
          y += 12;
        }
        if (c.pred !== undefined) {
          ctx.fillStyle = c.label !== undefined && c.pred !== c.label ? "#d62728" : "#2ca02c";
          ctx.fillText(c.pred, c.x, y);
        }
      });
      if (title) {
        ctx.fillStyle = "black";
        ctx.font = "bold 13px DejaVu Sans, sans-serif";
        ctx.fillText(title, 8, 16);
      }
      return Promise.resolve(new Uint8Array(canvas.toBuffer("image/png")));
    },
  });
}

/** One grey image (values in [0, 1], 0 = white background as Fashion-MNIST's ink is light) on a canvas. */
function greyCanvas(pixels: ArrayLike<number>, offset: number, rows: number, cols: number) {
  const canvas = createCanvas(cols, rows);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(cols, rows);
  for (let k = 0; k < rows * cols; k++) {
    const v = 255 - Math.round(255 * Math.min(1, Math.max(0, pixels[offset + k])));
    img.data[4 * k] = img.data[4 * k + 1] = img.data[4 * k + 2] = v;
    img.data[4 * k + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

function greyPng(pixels: ArrayLike<number>, offset: number, rows: number, cols: number) {
  return new Uint8Array(greyCanvas(pixels, offset, rows, cols).toBuffer("image/png"));
}
