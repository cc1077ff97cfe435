/**
 * Charts in Jupyter: a {@link Chart} (an SVG, with its PNG on demand) displays itself as a
 * cell's value; {@link show} displays one; a {@link LiveChart} redraws one output in place
 * while a computation runs (a Jupyter `display_id`), as d2l's `Animator` does. Outside
 * Jupyter (a script, a test) the displays do nothing.
 *
 * What a saved notebook keeps of a chart is its PNG (drawn at twice the chart's size, with
 * the chart's size in the output's metadata so that it shows at that size), not its SVG: an
 * SVG output is not seen wherever a notebook is read. nbconvert's HTML export (6.5, as Debian
 * 12 ships it) passes an SVG output through lxml's cleaner, which drops every SVG element and
 * keeps the text (a page of axis labels and blank space), and prefers an SVG to a PNG of the
 * same output; renderers that sanitize SVG drop it too. A PNG is drawn by every one of them.
 * While a {@link LiveChart} runs, its redraws are SVG (no rasterising per redraw); its last
 * is the PNG. The SVG stays available in code (`chart.svg`).
 *
 * @module
 */
import { type Plot, type PlotExtras, plotSvg, type PngOptions, svgToPng } from "./render.ts";
import {
  flushOutput,
  jupyter,
  type MimeBundle,
  type MimeMetadata,
  sendDisplay,
} from "../notebook/print.ts";

export type { MimeBundle, MimeMetadata };

/** Bytes as base64 (`btoa` over binary strings, in chunks that `fromCharCode` accepts). */
export function encodeBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/**
 * The key of the method by which an object displays itself in a Deno Jupyter cell
 * (`Symbol.for("Jupyter.display")`).
 */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for(
  "Jupyter.display",
) as typeof JUPYTER_DISPLAY;

/**
 * A rendered chart: its standalone SVG, and its PNG on demand. As the last expression of a
 * notebook cell it displays itself: as an HTML `<img>` of its PNG at the chart's size (a
 * cell's value carries no metadata, so the size goes in the HTML), with the PNG and a line
 * of text beside it for viewers without HTML. In a notebook whose outputs are saved by
 * `jupyter nbconvert --execute`, use `await show(chart)` instead: a cell's value is drawn
 * after the cell's code ends, and Deno's kernel can report the cell finished before it has
 * sent it (once in a CI run under load), so the saved notebook may lack it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Chart, JUPYTER_DISPLAY, Plot } from "../../plot.ts";
 * const chart = Chart.plot({ width: 300, height: 200, marks: [Plot.lineY([1, 4, 9])] });
 * assert.ok(chart.svg.startsWith("<svg"));
 * assert.deepEqual(chart.size, { width: 300, height: 200 });
 * const bundle = await chart[JUPYTER_DISPLAY]();
 * assert.deepEqual(Object.keys(bundle), ["text/html", "image/png", "text/plain"]);
 * assert.match(bundle["text/html"], /^<img src="data:image\/png;base64,[^"]+" width="300" height="200"/);
 * ```
 */
export class Chart {
  /** The standalone SVG document. */
  readonly svg: string;
  /** The chart's title, if it has one: in its text form, which a saved notebook keeps. */
  readonly title: string | undefined;
  #png: ((scale: number) => Promise<Uint8Array>) | undefined;

  /**
   * Wraps a standalone SVG document. `png` draws the PNG itself, for content that Skia's
   * SVG renderer cannot draw (embedded images); by default the SVG is rasterised.
   */
  constructor(
    svg: string,
    { png, title }: { png?: (scale: number) => Promise<Uint8Array>; title?: string } = {},
  ) {
    if (!svg.startsWith("<svg")) throw new Error("Chart: expected an <svg> document");
    this.svg = svg;
    this.title = title;
    this.#png = png;
  }

  /** Renders Plot's options, with a legend if given (see `plotSvg`). */
  static plot(options: Plot.PlotOptions, extras: PlotExtras = {}): Chart {
    const title = options.title === undefined || options.title === null
      ? undefined
      : String(options.title);
    return new Chart(plotSvg(options, extras), { title });
  }

  /** The chart's size in CSS pixels: its SVG's `width` and `height`. */
  get size(): { width: number; height: number } {
    const attr = (name: string) => {
      const m = this.svg.match(new RegExp(`^<svg[^>]*\\s${name}="([\\d.]+)"`));
      if (!m) throw new Error(`Chart: the <svg> element needs a numeric ${name} attribute`);
      return +m[1];
    };
    return { width: attr("width"), height: attr("height") };
  }

  /** The chart rasterised by Skia (default scale 2). */
  png(opts: PngOptions = {}): Promise<Uint8Array> {
    return this.#png ? this.#png(opts.scale ?? 2) : svgToPng(this.svg, opts);
  }

  /**
   * What a saved notebook keeps: the PNG (base64, twice the chart's size) and a line of
   * text, with {@link metadata} to show the PNG at the chart's size.
   */
  async bundle(): Promise<MimeBundle> {
    return { "image/png": encodeBase64(await this.png()), "text/plain": String(this) };
  }

  /** The display metadata of {@link bundle}: the PNG's size on screen, `{ width, height }`. */
  get metadata(): MimeMetadata {
    return { "image/png": { ...this.size } };
  }

  /**
   * A line of text for viewers that show no image: `Chart "Loss" (640 x 400 px)`, or
   * without a title `Chart (640 x 400 px)`.
   */
  toString(): string {
    const { width, height } = this.size;
    return `Chart${this.title === undefined ? "" : ` "${this.title}"`} (${width} x ${height} px)`;
  }

  /** Jupyter's display hook: the PNG in an HTML `<img>` at the chart's size, and the bundle. */
  async [JUPYTER_DISPLAY](): Promise<MimeBundle> {
    const b = await this.bundle();
    const { width, height } = this.size;
    const img = `<img src="data:image/png;base64,${b["image/png"]}" width="${width}" ` +
      `height="${height}" alt="${String(this).replace(/&/g, "&amp;").replace(/"/g, "&quot;")}">`;
    return { "text/html": img, ...b };
  }
}

/**
 * Displays `chart` (or Plot's options, with `extras` such as a legend) in the notebook, as
 * its PNG at the chart's size (see the module's note); does nothing outside Jupyter. Returns nothing, so that `await show(...)` as
 * a cell's last line does not display the chart a second time; keep a {@link Chart} to
 * reuse it (its `svg`, its `png()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Chart, Plot, show } from "../../plot.ts";
 * const chart = Chart.plot({ marks: [Plot.dot([[1, 2], [3, 4]])] });
 * await show(chart); // shown in a notebook
 * assert.ok(chart.svg.length > 0);
 * ```
 */
export async function show(
  chart: Chart | Plot.PlotOptions,
  extras: PlotExtras = {},
): Promise<void> {
  const c = chart instanceof Chart ? chart : Chart.plot(chart, extras);
  if (!jupyter()) return;
  sendDisplay(c.bundle(), { metadata: c.metadata });
  await flushOutput();
}

/**
 * One notebook output that redraws in place: `update()` it several times while a model
 * trains (SVG), `finish()` it at the end (which draws the PNG that the notebook keeps). Redraws are throttled to
 * `minIntervalMs` (default 250 ms), except the last. Does nothing outside Jupyter, but
 * keeps the last chart.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LiveChart, Plot } from "../../plot.ts";
 * const live = new LiveChart();
 * for (let k = 1; k <= 3; k++) live.update({ marks: [Plot.lineY([1, 2, 3].slice(0, k))] });
 * await live.finish();
 * const final = live.chart;
 * assert.ok(final!.svg.includes("<path"));
 * ```
 */
export class LiveChart {
  #id = `bnlab-${crypto.randomUUID()}`;
  #shown = false;
  #last: Chart | undefined;
  #drawnAt = -Infinity;
  #pending = false;
  #minIntervalMs: number;

  /** A live output, redrawn at most every `minIntervalMs`. */
  constructor({ minIntervalMs = 250 }: { minIntervalMs?: number } = {}) {
    this.#minIntervalMs = minIntervalMs;
  }

  /** The chart last given. */
  get chart(): Chart | undefined {
    return this.#last;
  }

  /** Replaces the chart (SVG only while live); redraws if the last redraw is old enough. */
  update(chart: Chart | Plot.PlotOptions): void {
    this.#last = chart instanceof Chart ? chart : Chart.plot(chart);
    const now = performance.now();
    if (now - this.#drawnAt < this.#minIntervalMs) {
      this.#pending = true;
      return;
    }
    this.#draw({ "image/svg+xml": this.#last.svg });
    this.#drawnAt = now;
    this.#pending = false;
  }

  /**
   * Draws the last chart for good, with its PNG, and waits until the notebook has every
   * output ({@link flushOutput}). Returns nothing, so that `await live.finish()` as a cell's
   * last line does not show the chart a second time; the chart stays in `chart`.
   */
  async finish(): Promise<void> {
    // Outside Jupyter there is nothing to draw: the PNG is not rendered.
    if (this.#last && jupyter()) this.#draw(this.#last.bundle(), this.#last.metadata);
    this.#pending = false;
    await flushOutput();
  }

  /** Whether an update is waiting for the next redraw (or `finish`). */
  get pending(): boolean {
    return this.#pending;
  }

  #draw(bundle: MimeBundle | Promise<MimeBundle>, metadata?: MimeMetadata): void {
    sendDisplay(bundle, { display_id: this.#id, update: this.#shown, metadata });
    this.#shown = true;
  }
}

/** A value of a {@link table} cell: numbers are rounded to the table's digits. */
export type Cell = string | number | null | undefined;

/**
 * A small table that shows as HTML in a notebook (and as aligned text in `String(t)`):
 * one object per row, keys as column headers, numbers with `digits` decimals.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JUPYTER_DISPLAY, table } from "../../plot.ts";
 * const t = table([{ run: "BN", "test acc": 0.8612 }, { run: "plain", "test acc": 0.8021 }]);
 * assert.ok(t[JUPYTER_DISPLAY]()["text/html"].includes("<td>0.861</td>"));
 * assert.ok(String(t).includes("plain"));
 * ```
 */
export function table(
  rows: readonly Record<string, Cell>[],
  { digits = 3 }: { digits?: number } = {},
): { [JUPYTER_DISPLAY](): MimeBundle; toString(): string } {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const text = (v: Cell) =>
    v === null || v === undefined
      ? ""
      : typeof v === "number"
      ? (Number.isInteger(v) ? String(v) : v.toFixed(digits).replace(/^-(0\.?0*)$/, "$1")) // no "-0.000"
      : v;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const html = `<table><thead><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>` +
    `</thead><tbody>${
      rows.map((r) => `<tr>${columns.map((c) => `<td>${esc(text(r[c]))}</td>`).join("")}</tr>`)
        .join("")
    }</tbody></table>`;
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => text(r[c]).length)));
  const line = (cells: string[]) => cells.map((s, i) => s.padEnd(widths[i])).join("  ").trimEnd();
  const plain = [line(columns), ...rows.map((r) => line(columns.map((c) => text(r[c]))))]
    .join("\n");
  return {
    [JUPYTER_DISPLAY]: () => ({ "text/html": html, "text/plain": plain }),
    toString: () => plain,
  };
}
