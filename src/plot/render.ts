/**
 * The bridge from Observable Plot to files and notebooks, with no browser: Plot renders
 * into a DOM that linkedom supplies, the result is serialised as a standalone SVG, and
 * Skia (`@napi-rs/canvas`) rasterises that SVG to PNG.
 *
 * The options are Plot's own (`Plot.plot(options)`), so every mark, scale and transform
 * of Plot is available; bnlab adds only what a standalone file needs: the SVG namespace,
 * a font, a white background, and tick offsets in pixels (Skia's SVG renderer ignores
 * `em` offsets). Plot answers with an HTML `<figure>` instead of an `<svg>` when asked
 * for a title, subtitle, caption or legend; {@link plotSvg} keeps the figure's title and
 * subtitle as SVG text above the chart, draws a legend given as {@link PlotExtras}, and
 * refuses the rest with a message.
 *
 * @module
 */
import * as ObservablePlot from "npm:@observablehq/plot@0.6.17";
import { parseHTML } from "npm:linkedom@0.18.15";
import { createCanvas, Image } from "npm:@napi-rs/canvas@0.1.100";

/**
 * Observable Plot itself (`npm:@observablehq/plot@0.6.17`), for its marks, scales and
 * transforms: `Plot.line`, `Plot.dot`, `Plot.areaY`, `Plot.barX`, ... Pass their results
 * in the `marks` of {@link plotSvg}'s options. See https://observablehq.com/plot/.
 */
export const Plot: typeof ObservablePlot = ObservablePlot;
/** Plot's namespace of types (`Plot.PlotOptions`, `Plot.Markish`, ...). */
export declare namespace Plot {
  /** The options of `Plot.plot`. */
  export type PlotOptions = ObservablePlot.PlotOptions;
  /** A mark, an array of marks, or a render function. */
  export type Markish = ObservablePlot.Markish;
  /** A render function (a custom mark). */
  export type RenderFunction = ObservablePlot.RenderFunction;
  /** The chart's dimensions, as a render function sees them. */
  export type Dimensions = ObservablePlot.Dimensions;
}

const SVG_NS = "http://www.w3.org/2000/svg";
/** Font size of bnlab's charts, in CSS pixels (Plot's default). */
const FONT_SIZE = 10;

/** A node of linkedom's DOM, as much of it as the bridge uses. */
interface Node {
  tagName: string;
  outerHTML: string;
  textContent: string | null;
  childNodes: Node[];
  getAttribute(k: string): string | null;
  setAttribute(k: string, v: string): void;
  appendChild(n: Node): void;
  insertBefore(n: Node, ref: Node | null): void;
  querySelector(selector: string): Node | null;
  querySelectorAll(selector: string): Node[];
  firstChild: Node | null;
}

interface Doc {
  createElementNS(ns: string, tag: string): Node;
}

/** A fresh DOM document for one chart. */
function newDocument(): Doc {
  // linkedom's window type lacks `document` in its declarations; it is there at runtime.
  return (parseHTML("<!DOCTYPE html><html><body></body></html>") as unknown as {
    document: Doc;
  }).document;
}

/** A legend entry: a swatch (line, dashed line or square) and its label. */
export interface LegendItem {
  /** The label. */
  label: string;
  /** Colour of the swatch. */
  color: string;
  /** `"line"` (default) or `"square"`. */
  symbol?: "line" | "square";
  /** SVG dash pattern of a line swatch, e.g. `"6,4"`. */
  dash?: string;
}

/** What {@link plotSvg} adds to Plot's options. */
export interface PlotExtras {
  /**
   * A legend, drawn as rows of swatches above the chart, wrapped to the chart's width
   * (Plot's own legends are HTML, which a standalone SVG cannot hold); space is made for it.
   */
  legend?: readonly LegendItem[];
}

/** Height of one legend row. */
const LEGEND_ROW = 20;

/** Where each legend entry goes: rows from `left`, wrapped before `right`. */
function layoutLegend(items: readonly LegendItem[], left: number, right: number) {
  const placed: { item: LegendItem; x: number; row: number }[] = [];
  let x = left, row = 0;
  for (const item of items) {
    const swatch = item.symbol === "square" ? 14 : 27;
    const width = swatch + Math.ceil(item.label.length * FONT_SIZE * 0.62);
    if (x > left && x + width > right) [x, row] = [left, row + 1];
    placed.push({ item, x, row });
    x += width + 18;
  }
  return { placed, rows: placed.length ? row + 1 : 0 };
}

/** Draws the legend's entries, laid out by {@link layoutLegend}, with row 0 at `y`. */
function drawLegend(doc: Doc, parent: Node, layout: ReturnType<typeof layoutLegend>, y: number) {
  const g = doc.createElementNS(SVG_NS, "g");
  g.setAttribute("font-size", String(FONT_SIZE));
  g.setAttribute("text-anchor", "start");
  const el = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const e = doc.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    g.appendChild(e);
  };
  for (const { item: it, x: x0, row } of layout.placed) {
    let x = x0;
    const yy = y + row * LEGEND_ROW;
    if (it.symbol === "square") {
      el("rect", { x, y: yy - 5, width: 10, height: 10, fill: it.color });
      x += 14;
    } else {
      const dash: Record<string, string> = it.dash && it.dash !== "none"
        ? { "stroke-dasharray": it.dash }
        : {};
      el("line", {
        x1: x,
        x2: x + 22,
        y1: yy,
        y2: yy,
        stroke: it.color,
        "stroke-width": 2,
        ...dash,
      });
      x += 27;
    }
    el("text", { x, y: yy, dy: FONT_SIZE * 0.32 }, it.label);
  }
  parent.appendChild(g);
}

/**
 * Renders a Plot chart as a standalone SVG document (a string): `Plot.plot(options)`
 * with linkedom's `document`, plus the SVG namespace, a white background, a font, the
 * figure's `title` and `subtitle` (if any) as SVG text above the chart, and a `legend`
 * under them, wrapped to the chart's width (see {@link PlotExtras}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Plot, plotSvg } from "../../plot.ts";
 * const svg = plotSvg({
 *   title: "Squares",
 *   marks: [Plot.lineY([0, 1, 4, 9, 16], { stroke: "steelblue" })],
 * }, { legend: [{ label: "x^2", color: "steelblue" }] });
 * assert.ok(svg.startsWith("<svg") && svg.includes("Squares") && svg.includes(">x^2</text>"));
 * ```
 */
export function plotSvg(options: Plot.PlotOptions, { legend }: PlotExtras = {}): string {
  const { title, subtitle, caption, ...rest } = options;
  if (caption !== undefined) {
    throw new Error(
      "plotSvg: `caption` makes Plot return HTML; put the caption in the text around the chart",
    );
  }
  if ((rest as { color?: { legend?: boolean } }).color?.legend) {
    throw new Error("plotSvg: Plot's legends are HTML; pass plotSvg(options, { legend: [...] })");
  }
  const document = newDocument();
  const heading = [title, subtitle].filter((t) => t !== undefined && t !== null).map(String);
  const headingHeight = heading.length * (FONT_SIZE + 8);
  const legendY = headingHeight + 12;
  const left = rest.marginLeft ?? 40;
  const legendLayout = layoutLegend(legend ?? [], left, (rest.width ?? 640) - 10);
  const marginTop = (rest.marginTop ?? 20) + headingHeight + legendLayout.rows * LEGEND_ROW;
  const svg = Plot.plot({
    ...rest,
    marginTop,
    style: { background: "white", ...(typeof rest.style === "object" ? rest.style : {}) },
    document: document as unknown as Plot.PlotOptions["document"],
  }) as unknown as Node;
  if (svg.tagName.toLowerCase() !== "svg") {
    throw new Error(`plotSvg: Plot returned <${svg.tagName.toLowerCase()}>, expected <svg>`);
  }
  svg.setAttribute("xmlns", SVG_NS);
  svg.setAttribute("font-family", "DejaVu Sans, sans-serif");
  // A white rectangle under everything: the PNG and viewers without CSS see a background.
  const bg = document.createElementNS(SVG_NS, "rect");
  for (const [k, v] of [["width", "100%"], ["height", "100%"], ["fill", "white"]]) {
    bg.setAttribute(k, v);
  }
  svg.insertBefore(bg, svg.firstChild);
  heading.forEach((text, i) => {
    const t = document.createElementNS(SVG_NS, "text");
    const attrs: [string, string][] = [
      ["x", String(left)],
      ["y", String(16 + i * (FONT_SIZE + 8))],
      ["font-size", String(i === 0 ? FONT_SIZE + 3 : FONT_SIZE + 1)],
      ["font-weight", i === 0 ? "bold" : "normal"],
      ["text-anchor", "start"], // Plot's root sets "middle"
    ];
    for (const [k, v] of attrs) t.setAttribute(k, v);
    t.textContent = text;
    svg.appendChild(t);
  });
  if (legendLayout.rows) {
    drawLegend(document, svg, legendLayout, legendY + (heading.length ? 4 : 0));
  }
  // Skia's SVG renderer ignores `em` offsets, which Plot uses to place tick labels.
  return svg.outerHTML.replace(
    / (d?[xy])="(-?[\d.]+)em"/g,
    (_, a, em) => ` ${a}="${+em * FONT_SIZE}"`,
  );
}

/** Options of {@link svgToPng} and {@link plotPng}. */
export interface PngOptions {
  /** Pixels per CSS pixel (default 2, for sharp text). */
  scale?: number;
}

/**
 * Rasterises a standalone SVG document with Skia to PNG bytes at `scale` times its CSS
 * size, on a white background.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { svgToPng } from "../../plot.ts";
 * const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"></svg>';
 * const png = await svgToPng(svg, { scale: 1 });
 * assert.equal(new TextDecoder().decode(png.subarray(1, 4)), "PNG");
 * ```
 */
export async function svgToPng(svg: string, { scale = 2 }: PngOptions = {}): Promise<Uint8Array> {
  const size = (name: string) => {
    const m = svg.match(new RegExp(`^<svg[^>]*\\s${name}="([\\d.]+)"`));
    if (!m) throw new Error(`svgToPng: the <svg> element needs a numeric ${name} attribute`);
    return +m[1];
  };
  const [width, height] = [size("width"), size("height")];
  // Skia rasterises an SVG at its own size: scale the root's size (the viewBox keeps the
  // drawing's coordinates) so text and lines are drawn sharp, not a bitmap enlarged.
  const scaled = svg.replace(
    /^<svg[^>]*>/,
    (root) =>
      root.replace(/\s(width|height)="([\d.]+)"/g, (_, k, v) => ` ${k}="${+v * scale}"`)
        .replace(
          /^<svg/,
          root.includes("viewBox") ? "<svg" : `<svg viewBox="0 0 ${width} ${height}"`,
        ),
  );
  const img = new Image();
  const loaded = new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = (e: unknown) => reject(new Error(`Skia could not load the chart SVG: ${e}`));
  });
  img.src = new TextEncoder().encode(scaled) as unknown as Image["src"];
  await loaded;
  const canvas = createCanvas(Math.round(width * scale), Math.round(height * scale));
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  return new Uint8Array(await canvas.encode("png"));
}

/**
 * A Plot chart as PNG bytes: {@link plotSvg} then {@link svgToPng}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Plot, plotPng } from "../../plot.ts";
 * const png = await plotPng({ width: 200, height: 100, marks: [Plot.barY([3, 1, 2])] });
 * const view = new DataView(png.buffer, png.byteOffset);
 * assert.deepEqual([view.getUint32(16), view.getUint32(20)], [400, 200]); // scale 2
 * ```
 */
export function plotPng(
  options: Plot.PlotOptions,
  png: PngOptions & PlotExtras = {},
): Promise<Uint8Array> {
  return svgToPng(plotSvg(options, png), png);
}
