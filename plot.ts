/**
 * bnlab's charts, on Observable Plot: a thin bridge that renders Plot's own options to a
 * standalone SVG in Deno (linkedom for the DOM), rasterises it to PNG with Skia
 * (`@napi-rs/canvas`), and shows it inline in Jupyter; and the training curves of d2l's
 * `train_ch6`, live in a notebook. Loads npm packages (with full `npm:` specifiers, so
 * it imports from any directory); the core (`mod.ts`) does not.
 *
 * @example
 * ```ts
 * import { Plot, plotSvg } from "./plot.ts";
 * const svg = plotSvg({ marks: [Plot.lineY([3, 1, 4, 1, 5])] });
 * console.log(svg.startsWith("<svg")); // true
 * ```
 *
 * @module
 */
export {
  type LegendItem,
  Plot,
  plotPng,
  plotSvg,
  type PngOptions,
  svgLegend,
  svgToPng,
} from "./src/plot/render.ts";
export {
  type CurveEpoch,
  type CurveHistory,
  curvesDisplay,
  type CurvesOptions,
  curvesPng,
  curvesSvg,
  type CurveUpdate,
  LiveCurves,
  type MimeBundle,
} from "./src/plot/curves.ts";
