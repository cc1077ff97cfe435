/**
 * The training curves of d2l's `train_ch6` (train loss, train accuracy, test accuracy
 * against epochs) drawn with Observable Plot: as an SVG string (linkedom supplies the
 * `document`, so no browser is needed), as PNG bytes (Skia via `@napi-rs/canvas`), or as
 * a Jupyter display that redraws itself while a model trains.
 *
 * @module
 */
import { Plot, plotSvg, type PngOptions, svgToPng } from "./render.ts";
import { Chart, LiveChart } from "./display.ts";

/** A mid-epoch reading: `epoch` counts from 1, `fraction` of it is done, in (0, 1]. */
export interface CurveUpdate {
  /** Epoch number, from 1. */
  epoch: number;
  /** Part of the epoch done, in (0, 1]. */
  fraction: number;
  /** Mean training loss so far in the epoch. */
  loss: number;
  /** Training accuracy so far in the epoch. */
  trainAcc: number;
}

/** An end-of-epoch reading (`epoch` counts from 1). */
export interface CurveEpoch {
  /** Epoch number, from 1. */
  epoch: number;
  /** Test accuracy after the epoch. */
  testAcc: number;
}

/** What the curves are drawn from: the history {@link fit} returns, or a part of it. */
export interface CurveHistory {
  /** Mid-epoch readings (train loss and accuracy). */
  updates: readonly CurveUpdate[];
  /** End-of-epoch readings (test accuracy). */
  epochs: readonly CurveEpoch[];
}

/** Options for {@link curvesSvg} and {@link curvesPng}. */
export interface CurvesOptions {
  /** Width in CSS pixels. Default 420. */
  width?: number;
  /** Height in CSS pixels. Default 280. */
  height?: number;
  /** The x axis spans [0, epochs] (fixed while training live); default: the data. */
  epochs?: number;
  /** A title above the chart. */
  title?: string;
}

// d2l's Animator styles: 'b-' (train loss), 'm--' (train acc), 'g-.' (test acc).
const SERIES = [
  { name: "train loss", stroke: "#1f77b4", dash: "none" },
  { name: "train acc", stroke: "#bf3fbf", dash: "6,4" },
  { name: "test acc", stroke: "#2ca02c", dash: "8,3,2,3" },
] as const;

interface Point {
  x: number;
  y: number;
  series: string;
}

function points(h: CurveHistory): Point[] {
  const out: Point[] = [];
  for (const u of h.updates) {
    const x = u.epoch - 1 + u.fraction;
    out.push({ x, y: u.loss, series: "train loss" }, { x, y: u.trainAcc, series: "train acc" });
  }
  for (const e of h.epochs) out.push({ x: e.epoch, y: e.testAcc, series: "test acc" });
  return out;
}

/** The same values, with NaN and infinities made NaN: a gap in a Plot line. */
function finiteOr(v: number): number {
  return Number.isFinite(v) ? v : NaN;
}

/**
 * The three d2l training curves as a standalone SVG document (a string), with a legend.
 * Mid-epoch points sit at fractional epochs (`epoch - 1 + fraction`), test accuracy at
 * whole epochs. Non-finite readings (a diverging run) leave gaps, and the first one is
 * marked "diverged"; the finite parts are always drawn.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { curvesSvg } from "../../plot.ts";
 * const svg = curvesSvg({
 *   updates: [
 *     { epoch: 1, fraction: 0.5, loss: 1.2, trainAcc: 0.55 },
 *     { epoch: 1, fraction: 1, loss: 0.9, trainAcc: 0.66 },
 *   ],
 *   epochs: [{ epoch: 1, testAcc: 0.7 }],
 * });
 * assert.ok(svg.startsWith("<svg") && svg.includes("test acc"));
 * ```
 */
export function curvesSvg(history: CurveHistory, opts: CurvesOptions = {}): string {
  const { width = 420, height = 280, epochs, title } = opts;
  const data = points(history);
  const finite = data.filter((p) => Number.isFinite(p.y));
  const bad = data.filter((p) => !Number.isFinite(p.y));
  const marks: Plot.Markish[] = [
    Plot.gridX({ stroke: "#e4e4e4", strokeOpacity: 1 }),
    Plot.gridY({ stroke: "#e4e4e4", strokeOpacity: 1 }),
    Plot.ruleY([0], { stroke: "#999" }),
  ];
  for (const s of SERIES) {
    const own = data.filter((p) => p.series === s.name).map((p) => ({ ...p, y: finiteOr(p.y) }));
    marks.push(Plot.line(own, {
      x: "x",
      y: "y",
      stroke: s.stroke,
      strokeDasharray: s.dash,
      strokeWidth: 1.5,
    }));
    // A point with no finite neighbour draws no line segment: show it as a dot.
    const lone = own.filter((p, i) =>
      Number.isFinite(p.y) && !Number.isFinite(own[i - 1]?.y ?? NaN) &&
      !Number.isFinite(own[i + 1]?.y ?? NaN)
    );
    if (lone.length) marks.push(Plot.dot(lone, { x: "x", y: "y", fill: s.stroke, r: 2 }));
  }
  const yMax = Math.max(1, ...finite.map((p) => p.y));
  if (bad.length) {
    const x = Math.min(...bad.map((p) => p.x));
    marks.push(Plot.ruleX([x], { stroke: "#d62728", strokeDasharray: "3,3" }));
    marks.push(Plot.text([{ x, y: yMax }], {
      x: "x",
      y: "y",
      text: () => "diverged",
      fill: "#d62728",
      textAnchor: "end",
      dx: -3,
      dy: 6,
    }));
  }
  const legend = SERIES.map((s) => ({ label: s.name, color: s.stroke, dash: s.dash }));
  return plotSvg({
    width,
    height,
    marginTop: 14,
    marginLeft: 40,
    title,
    x: { label: "epoch", domain: [0, epochs ?? Math.max(1, ...data.map((p) => p.x))] },
    y: { domain: [0, yMax], label: null },
    marks,
  }, { legend });
}

/**
 * The curves of {@link curvesSvg} as PNG bytes, rasterised by Skia at `scale` times the
 * CSS size (default 2, for sharp text) on a white background.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { curvesPng } from "../../plot.ts";
 * const png = await curvesPng({
 *   updates: [{ epoch: 1, fraction: 1, loss: 0.9, trainAcc: 0.66 }],
 *   epochs: [{ epoch: 1, testAcc: 0.7 }],
 * });
 * assert.equal(new TextDecoder().decode(png.subarray(1, 4)), "PNG");
 * ```
 */
export function curvesPng(
  history: CurveHistory,
  opts: CurvesOptions & PngOptions = {},
): Promise<Uint8Array> {
  return svgToPng(curvesSvg(history, opts), { scale: opts.scale });
}

/**
 * The curves as a {@link Chart}: it displays itself as a notebook cell's value, and gives
 * its PNG.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { curvesChart } from "../../plot.ts";
 * const chart = curvesChart({ updates: [], epochs: [{ epoch: 1, testAcc: 0.7 }] });
 * assert.ok(chart.svg.includes("test acc"));
 * ```
 */
export function curvesChart(history: CurveHistory, opts: CurvesOptions = {}): Chart {
  return new Chart(curvesSvg(history, opts), { title: opts.title });
}

/**
 * Live curves for a notebook, like d2l's `Animator`: pass `live.onUpdate` and
 * `live.onEpoch` to `fit`; each event redraws one chart in place (a Jupyter display id);
 * `await live.finish()` at the end draws it for good, with its PNG. Outside Jupyter it
 * only collects the readings, in `live.history`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LiveCurves } from "../../plot.ts";
 * const live = new LiveCurves({ epochs: 2 });
 * live.onUpdate({ epoch: 1, fraction: 1, loss: 0.9, trainAcc: 0.66 });
 * live.onEpoch({ epoch: 1, testAcc: 0.7 });
 * assert.equal(live.history.updates.length, 1);
 * await live.finish();
 * assert.ok(live.chart!.svg.includes("train loss"));
 * ```
 */
export class LiveCurves {
  /** Everything received so far. */
  readonly history: { updates: CurveUpdate[]; epochs: CurveEpoch[] } = { updates: [], epochs: [] };
  #live = new LiveChart();
  #opts: CurvesOptions;

  /** A live chart drawn with `opts` (pass `epochs` to fix the x axis). */
  constructor(opts: CurvesOptions = {}) {
    this.#opts = opts;
  }

  /** Records a mid-epoch reading and redraws. */
  onUpdate = (u: CurveUpdate): void => {
    this.history.updates.push({
      epoch: u.epoch,
      fraction: u.fraction,
      loss: u.loss,
      trainAcc: u.trainAcc,
    });
    this.#live.update(curvesChart(this.history, this.#opts));
  };

  /** Records an end-of-epoch reading and redraws. */
  onEpoch = (e: CurveEpoch): void => {
    this.history.epochs.push({ epoch: e.epoch, testAcc: e.testAcc });
    this.#live.update(curvesChart(this.history, this.#opts));
  };

  /** The chart last drawn (undefined before the first reading). */
  get chart(): Chart | undefined {
    return this.#live.chart;
  }

  /**
   * Draws the final chart, with its PNG, and waits until the notebook has every output.
   * Returns nothing, so that `await live.finish()` as a cell's last line does not show the
   * chart a second time; the chart stays in {@link LiveCurves.chart}.
   */
  finish(): Promise<void> {
    return this.#live.finish();
  }
}
