/**
 * The page's app module (bundled into `app.js` with the library by `web/build.ts`): loads
 * Fashion-MNIST, wires the controls to a {@link Lab}, and redraws the curves and the
 * pre-activation bands with the notebooks' chart code (`src/plot/charts.ts`, Observable Plot
 * over linkedom, which runs in a page as it does in Deno) after every step.
 *
 * URL parameters preset the controls (`lr`, `batch`, `momentum`, `steps`, `norm`, `seed`),
 * the data's folder (`data`), and subsets for quick runs (`train`, `test`: the first N
 * examples). `globalThis.bnlabLab` exposes the lab to the tests (tests/web/run.ts).
 *
 * @module
 */
import { adapterInfo } from "../src/gpu/device.ts";
import { bandsChart, lineChart } from "../src/plot/charts.ts";
import { type DataSource, loadSplit } from "./data.ts";
import { type Accuracies, Lab, type LabSettings, type StatsRow } from "./lab.ts";

const $ = <T extends HTMLElement = HTMLInputElement>(id: string) =>
  document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
for (const id of ["lr", "batch", "momentum", "steps", "norm"]) {
  const v = params.get(id);
  if (v !== null) $(id).value = v;
}
if (params.get("data")) $("data-url").value = params.get("data")!;

const status = (text: string, error = false) => {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
};

const info = await adapterInfo();
const adapterText = `${info.description || info.architecture || "unknown adapter"} (${info.kind}` +
  `${info.vendor ? `, ${info.vendor}` : ""}${info.isFallbackAdapter ? ", fallback" : ""})`;
const platform = (speed = "") =>
  $("platform").textContent = `WebGPU adapter: ${adapterText}` + speed;
platform();

let lab: Lab | undefined;
/** Test accuracies per network and mode, as evaluated (for the table and the tests). */
const accuracies: (Partial<Accuracies>)[] = [];
let stats: StatsRow[] | null = null;
/** Training images over which the population statistics are taken. */
const POPULATION = 4096;
/** Where the data was loaded from. */
let source = "";

/** Reads the controls, refusing values that cannot train. */
function settings(): LabSettings {
  const num = (id: string, ok: (v: number) => boolean, what: string) => {
    const v = Number($(id).value);
    if (!ok(v)) throw new Error(`${id} must be ${what}, got "${$(id).value}"`);
    return v;
  };
  return {
    norm: $<HTMLSelectElement>("norm").value as LabSettings["norm"],
    lr: num("lr", (v) => v > 0, "a number > 0"),
    batchSize: num("batch", (v) => Number.isInteger(v) && v >= 2, "an integer >= 2"),
    momentum: num("momentum", (v) => v >= 0 && v <= 1, "in [0, 1]"),
    steps: num("steps", (v) => Number.isInteger(v) && v >= 1, "an integer >= 1"),
    seed: Number(params.get("seed") ?? 0),
  };
}

/** Loads both splits from `source`, with progress, and makes the lab. */
async function loadData(src: DataSource) {
  $("start").disabled = true;
  const bar = $<HTMLProgressElement>("data-progress");
  const seen = new Map<string, [number, number]>();
  try {
    const onProgress = (file: string, loaded: number, total?: number) => {
      seen.set(file, [loaded, total ?? loaded]);
      const [a, b] = [...seen.values()].reduce(([x, y], [l, t]) => [x + l, y + t], [0, 0]);
      bar.value = seen.size < 4 ? 0.25 * seen.size * (a / b) : a / b;
      status(`Loading Fashion-MNIST: ${file}, ${(loaded / 1e6).toFixed(1)} MB`);
    };
    const [train, test] = await Promise.all([
      loadSplit(src, "train", onProgress),
      loadSplit(src, "test", onProgress),
    ]);
    const cut = (d: typeof train, n: string | null) => {
      const k = Math.min(d.n, Number(n ?? d.n));
      const px = d.rows * d.cols;
      return { ...d, n: k, images: d.images.subarray(0, k * px), labels: d.labels.subarray(0, k) };
    };
    if (lab?.state === "training") lab.stop();
    lab?.dispose();
    lab = new Lab(cut(train, params.get("train")), cut(test, params.get("test")), settings());
    bar.value = 1;
    source = "url" in src ? src.url : `files ${src.files.map((f) => f.name).join(", ")}`;
    status(
      `Fashion-MNIST loaded: ${lab.sizes.train} training and ${lab.sizes.test} test ` +
        "images. Press Start.",
    );
    $("start").disabled = false;
  } catch (e) {
    status(String((e as Error).message ?? e), true);
    throw e;
  }
}

const fmt = (v: number | undefined, d = 3) => v === undefined ? "…" : v.toFixed(d);

/** Redraws the curves and bands from the lab's readings. */
function draw() {
  if (!lab) return;
  // The default colours, in the same order as the bands': blue and orange.
  const series = (key: "loss" | "acc") =>
    lab!.runs.map((r) => ({
      label: r.label,
      points: r.readings.map((p) => ({ x: p.step, y: p[key] })),
    }));
  const steps = lab.settings.steps;
  const w = 560, h = 280;
  $("loss-chart").innerHTML = lineChart(series("loss"), {
    title: "training loss",
    xLabel: "step",
    width: w,
    height: h,
    xDomain: [0, steps],
  }).svg;
  $("acc-chart").innerHTML = lineChart(series("acc"), {
    title: "training accuracy (each batch)",
    xLabel: "step",
    width: w,
    height: h,
    xDomain: [0, steps],
    yDomain: [0, 1],
  }).svg;
  $("bands-chart").innerHTML = bandsChart(
    lab.runs.flatMap((r) => r.bands.map((b) => ({ ...b, panel: `${r.label}: ${r.watched}` }))),
    { xLabel: "step", panelWidth: 540, height: 280 },
  ).svg;
}

function drawTables() {
  if (!lab) return;
  $("acc-table").innerHTML = "<tr><th>test accuracy</th><th>batch statistics</th>" +
    "<th>running statistics</th></tr>" +
    lab.runs.map((r, i) =>
      `<tr><th>${r.label}</th><td>${fmt(accuracies[i]?.batch, 4)}</td>` +
      `<td>${fmt(accuracies[i]?.running, 4)}</td></tr>`
    ).join("");
  $("stats-table").innerHTML = stats
    ? `<caption>over the first ${Math.min(POPULATION, lab.sizes.train)} training images</caption>` +
      `<tr><th>${lab.runs[0].label}, layer 1 channel</th><th>running mean</th><th>mean</th>` +
      "<th>running var</th><th>var</th></tr>" + stats.map((s) =>
        `<tr><td>${s.channel}</td><td>${fmt(s.runningMean)}</td><td>${fmt(s.mean)}</td>` +
        `<td>${fmt(s.runningVar)}</td><td>${fmt(s.var)}</td></tr>`
      ).join("")
    : "";
}

/** Evaluates both networks with the chosen statistics (and the population statistics once). */
async function evaluate(mode: "batch" | "running") {
  if (!lab || lab.state === "training") return;
  busy(true, false);
  try {
    status(`Evaluating with ${mode} statistics…`);
    for (const i of lab.runs.keys()) {
      const a = await lab.accuracy(i, mode);
      accuracies[i] = { ...accuracies[i], [mode]: a };
      drawTables();
    }
    stats ??= await lab.populationStats(POPULATION);
    drawTables();
    status(
      `Test accuracy with ${mode} statistics: ` +
        lab.runs.map((r, i) => `${r.label} ${fmt(accuracies[i][mode], 4)}`).join(", "),
    );
  } catch (e) {
    status(String((e as Error).message ?? e), true);
    throw e;
  } finally {
    busy(false, false);
  }
}

/**
 * While the networks train or are evaluated, nothing else may touch them or the data: Start,
 * the data's controls and the statistics switch wait (Stop is live while training).
 */
function busy(on: boolean, training: boolean) {
  for (const id of ["start", "data-load", "data-files"]) $(id).disabled = on;
  $<HTMLFieldSetElement>("stats-switch").disabled = on;
  $("stop").disabled = !(on && training);
}

async function start() {
  if (!lab) return;
  let s: LabSettings;
  try {
    s = settings();
  } catch (e) {
    return status((e as Error).message, true);
  }
  accuracies.length = 0;
  stats = null;
  drawTables();
  for (const r of document.querySelectorAll<HTMLInputElement>("input[name=stats]")) {
    r.checked = false;
  }
  busy(true, true);
  status("Training…");
  try {
    let drawn = 0;
    await lab.train(s, () => {
      // Redrawing costs tens of ms: on a GPU, where a step takes a few, not after every one.
      if (performance.now() - drawn > 200) draw(), drawn = performance.now();
      const at = lab!.runs[1].readings.length;
      platform(`; ${Math.round(lab!.examplesPerSec)} examples/s`);
      status(`Training: step ${at} of ${s.steps}`);
    });
    draw();
    status(
      `${lab.state === "stopped" ? "Stopped" : "Done"} after ` +
        `${lab.runs[1].readings.length} steps. Switch the statistics below to evaluate.`,
    );
  } catch (e) {
    status(String((e as Error).message ?? e), true);
    throw e;
  } finally {
    busy(false, false);
  }
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", () => lab?.stop());
$("data-load").addEventListener("click", () => loadData({ url: $("data-url").value }));
$("data-files").addEventListener("change", () => {
  const files = [...($("data-files").files ?? [])];
  if (files.length) loadData({ files });
});
for (const r of document.querySelectorAll<HTMLInputElement>("input[name=stats]")) {
  r.addEventListener("change", () => evaluate(r.value as "batch" | "running"));
}

globalThis.bnlabLab = { lab: () => lab, accuracies, stats: () => stats, source: () => source };

await loadData({ url: $("data-url").value }).catch(() => {});
