/**
 * bnlab's charts, on Observable Plot: a thin bridge that renders Plot's own options to a
 * standalone SVG in Deno (linkedom for the DOM), rasterises it to PNG with Skia
 * (`@napi-rs/canvas`), and shows it inline in Jupyter, live or not (`show`, `LiveChart`);
 * and the charts the lecture's experiments repeat: training curves (d2l's `Animator`),
 * runs compared, sweeps, percentile bands per layer, image grids. Non-finite values are
 * drawn as gaps and marked "diverged". Loads npm packages (with full `npm:` specifiers, so
 * it imports from any directory); the core (`mod.ts`) does not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Plot, plotSvg } from "./plot.ts";
 * const svg = plotSvg({ marks: [Plot.lineY([3, 1, 4, 1, 5])] });
 * assert.ok(svg.startsWith("<svg"));
 * ```
 *
 * @module
 */
export {
  type LegendItem,
  Plot,
  type PlotExtras,
  plotPng,
  plotSvg,
  type PngOptions,
  svgToPng,
} from "./src/plot/render.ts";
export {
  type Cell,
  Chart,
  JUPYTER_DISPLAY,
  LiveChart,
  type MimeBundle,
  type MimeMetadata,
  show,
  table,
} from "./src/plot/display.ts";
export {
  type BandPoint,
  bandsChart,
  imageGrid,
  type ImageGridOptions,
  lineChart,
  type LineChartOptions,
  PALETTE,
  type RunHistory,
  type RunMetric,
  runsChart,
  type Series,
  sweepChart,
  type SweepPoint,
  type XY,
} from "./src/plot/charts.ts";
export {
  type CurveEpoch,
  type CurveHistory,
  curvesChart,
  type CurvesOptions,
  curvesPng,
  curvesSvg,
  type CurveUpdate,
  LiveCurves,
} from "./src/plot/curves.ts";
