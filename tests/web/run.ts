/**
 * `deno task test:web`: the lab page (web/) in headless Chromium, on the browser tests'
 * runner setup (tests/browser/run.ts: puppeteer-core, `--enable-unsafe-webgpu`, SwiftShader
 * without a GPU). Builds the site, serves it with Fashion-MNIST as `deno task web` does, and
 * checks that:
 *
 * - the page loads with no console error and names its WebGPU adapter; it loads the data
 *   again from the four files picked in its file chooser; without `navigator.gpu` it says
 *   what to enable;
 * - Start trains both networks 30 steps from fixed seeds (batch 32, the first 1,024 training
 *   images), with one reading per step in each curve, and both losses fall;
 * - the statistics switch gives, for both networks, the test accuracies (first 256 test
 *   images) with batch and with running statistics that `evaluateAccuracy` gives in Deno for
 *   the same weights (read from the page), within 1e-3; the population statistics table has
 *   a row per channel of the first BN layer;
 * - while it trains, a task queued in the page runs within 0.5 s and a field takes input;
 * - Stop stops training within a second (measured in the page, at batch 16), and no step
 *   follows.
 *
 * Writes a screenshot of the trained page to `$BNLAB_ARTIFACTS/web_lab.png` (default
 * `tests/web/out/`); docs/web_lab.png in the README is a copy of it.
 *
 *     deno run -A tests/web/run.ts
 *
 * @module
 */
import puppeteer, { type Page } from "npm:puppeteer-core@25.19.0";
import { buildLab } from "../../web/build.ts";
import { findData, serveLab } from "../../web/serve.ts";
import type { StatsRow } from "../../web/lab.ts"; // and the page's globalThis.bnlabLab

const root = new URL("../../", import.meta.url).pathname;
const STEPS = 30, BATCH = 32, TRAIN = 1024, TEST = 256;
const CHROMIUM_PATHS = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

function chromiumPath(): string {
  const env = Deno.env.get("BNLAB_CHROMIUM");
  const found = (env ? [env] : CHROMIUM_PATHS).find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (!found) {
    throw new Error(
      `test:web: no Chromium at ${env ?? CHROMIUM_PATHS.join(", ")}: apt-get install -y chromium`,
    );
  }
  return found;
}

const failures: string[] = [];
function check(ok: boolean, what: string, detail = ""): void {
  console.log(`${what} ... ${ok ? "ok" : "FAILED"}${detail ? ` (${detail})` : ""}`);
  if (!ok) failures.push(`${what}${detail ? `: ${detail}` : ""}`);
}

interface PageRun {
  label: string;
  readings: { step: number; loss: number; acc: number }[];
}

/** The page's runs: label and readings of each network. */
function runs(page: Page): Promise<PageRun[]> {
  return page.evaluate(() =>
    globalThis.bnlabLab.lab()!.runs.map((r) => ({ label: r.label, readings: r.readings }))
  );
}

const state = (page: Page) => page.evaluate(() => globalThis.bnlabLab.lab()?.state);

async function main(): Promise<number> {
  const t0 = performance.now();
  const secs = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  const site = await buildLab(await Deno.makeTempDir({ prefix: "bnlab-web-" }));
  const server = serveLab(site, findData());
  const out = Deno.env.get("BNLAB_ARTIFACTS") ?? `${root}tests/web/out`;
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    protocolTimeout: 600_000,
    args: [
      "--headless=new",
      "--no-sandbox",
      "--enable-unsafe-webgpu",
      ...(Deno.env.get("BNLAB_CHROMIUM_ARGS") ?? "").split(/\s+/).filter((a) => a.length),
    ],
  });
  const errors: string[] = [];
  let weights: Record<string, number[]>[] = [];
  let pageAcc: { batch?: number; running?: number }[] = [];
  let norm = "";
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 800 });
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console error: ${m.text()}`);
    });
    page.on("pageerror", (e) => errors.push(`page error: ${e instanceof Error ? e.stack : e}`));
    const port = server.addr.port;
    await page.goto(
      `http://127.0.0.1:${port}/?steps=${STEPS}&batch=${BATCH}&train=${TRAIN}&test=${TEST}`,
    );
    await page.waitForFunction(
      `!document.getElementById("start").disabled ||
        document.getElementById("status").className === "error"`,
      { timeout: 120_000 },
    );
    const platform = await page.$eval("#platform", (e) => e.textContent ?? "");
    check(
      platform.startsWith("WebGPU adapter:") && errors.length === 0,
      "the page loads the data with no console error and names its adapter",
      `${platform}; ${await page.$eval("#status", (e) => e.textContent)}; ${secs()}` +
        (errors.length ? `\n${errors.join("\n")}` : ""),
    );

    // The same four files, picked from the disk.
    const chooser = await page.$("#data-files");
    const data = findData();
    await chooser!.uploadFile(
      ...["train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"]
        .map((f) => `${data}/${f}-ubyte.gz`),
    );
    await page.waitForFunction(
      () => globalThis.bnlabLab.source().startsWith("files") && globalThis.bnlabLab.lab(),
      { timeout: 120_000 },
    );
    const sizes = await page.evaluate(() => globalThis.bnlabLab.lab()!.sizes);
    check(
      sizes.train === TRAIN && sizes.test === TEST && errors.length === 0,
      "the data loads again from the four files picked in the file chooser",
      `${await page.evaluate(() => globalThis.bnlabLab.source())}; ${secs()}`,
    );

    await page.click("#start");
    await page.waitForFunction(() => globalThis.bnlabLab.lab()?.state === "done", {
      timeout: 240_000,
    });
    const trained = await runs(page);
    const perStep = trained.every((r) =>
      r.readings.length === STEPS && r.readings.every((p, i) => p.step === i + 1)
    );
    check(
      perStep,
      `both networks trained ${STEPS} steps, one reading per step`,
      `${await page.$eval("#platform", (e) => e.textContent)}; ${secs()}`,
    );
    for (const r of trained) {
      const mean = (a: { loss: number }[]) => a.reduce((s, p) => s + p.loss, 0) / a.length;
      const first = mean(r.readings.slice(0, 5)), last = mean(r.readings.slice(-5));
      check(
        last < first,
        `${r.label}: the loss falls`,
        `mean of steps 1-5 ${first.toFixed(4)}, of steps ${STEPS - 4}-${STEPS} ${last.toFixed(4)}`,
      );
    }
    const drawn = await page.evaluate(
      `["loss-chart", "acc-chart", "bands-chart"].map((id) =>
        document.querySelectorAll("#" + id + " svg path").length)`,
    ) as number[];
    check(drawn.every((n) => n > 0), "the curves and the bands are drawn", `paths ${drawn}`);

    // The statistics switch: running, then batch.
    for (const mode of ["running", "batch"] as const) {
      await page.click(`input[name=stats][value=${mode}]`);
      await page.waitForFunction(
        (m) =>
          globalThis.bnlabLab.accuracies.length === 2 &&
          globalThis.bnlabLab.accuracies.every((a) => a[m as "batch"] !== undefined) &&
          globalThis.bnlabLab.stats() !== null,
        { timeout: 120_000 },
        mode,
      );
    }
    pageAcc = await page.evaluate(() => globalThis.bnlabLab.accuracies);
    const stats = await page.evaluate(() => globalThis.bnlabLab.stats()) as StatsRow[];
    const rows = await page.$$eval("#stats-table tr", (r) => r.length);
    check(
      stats.length === 6 && rows === 7 && stats.every((s) => s.var > 0),
      "the running statistics beside the population's, a row per channel of the first BN",
      `${rows - 1} rows; channel 0: running mean ${stats[0]?.runningMean}, mean ${stats[0]?.mean}`,
    );
    weights = await page.evaluate(async () => {
      const lab = globalThis.bnlabLab.lab()!;
      return [await lab.stateArrays(0), await lab.stateArrays(1)];
    });
    norm = await page.evaluate(() => globalThis.bnlabLab.lab()!.settings.norm);
    await Deno.mkdir(out, { recursive: true });
    await page.screenshot({ path: `${out}/web_lab.png`, fullPage: true });
    console.log(`screenshot: ${out}/web_lab.png`);

    // Stop: a long run, stopped after a few steps.
    // Stop ends the loop after the step in flight, of one network: at batch 32 on SwiftShader
    // that took 0.3 to 1 s on a shared 2-core machine, so this run takes batches of 16.
    await page.evaluate(`document.getElementById("steps").value = "100000"`);
    await page.evaluate(`document.getElementById("batch").value = "16"`);
    await page.click("#start");
    await page.waitForFunction(() => globalThis.bnlabLab.lab()!.runs[1].readings.length >= 3, {
      timeout: 60_000,
    });
    // While it trains, a task queued in the page runs soon (the loop yields after each step
    // and awaits the GPU without blocking), and the controls take input.
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      delays.push(
        await page.evaluate(() =>
          new Promise<number>((r) => {
            const t = performance.now();
            setTimeout(() => r(performance.now() - t), 0);
          })
        ),
      );
    }
    await page.click("#lr", { count: 3 }); // selects the field's text
    await page.type("#lr", "0.5");
    const typed = await page.evaluate(`document.getElementById("lr").value`);
    check(
      Math.max(...delays) < 500 && typed === "0.5" && await state(page) === "training",
      "the page responds while it trains",
      `a queued task waited ${delays.map(Math.round).join(", ")} ms; the lr field reads ${typed}`,
    );
    const s0 = performance.now();
    await page.click("#stop");
    await page.waitForFunction(() => globalThis.bnlabLab.lab()!.state === "stopped", {
      timeout: 10_000,
      polling: 20,
    }).catch(() => {}); // a timeout fails the check below
    const seen = performance.now() - s0; // with the click's and the polling's delays
    const stopMs = await page.evaluate(() => globalThis.bnlabLab.lab()!.stopMs);
    const n1 = (await runs(page))[1].readings.length;
    await new Promise((r) => setTimeout(r, 1000));
    const n2 = (await runs(page))[1].readings.length;
    check(
      stopMs < 1000 && n1 === n2 && await state(page) === "stopped",
      "Stop stops within a second, and no step follows",
      `${Math.round(stopMs)} ms in the page from Stop to the loop's end (${
        Math.round(seen)
      } ms seen from here), after ${n1} steps`,
    );
    check(errors.length === 0, "no console error in the whole session", errors.join("\n"));

    // A browser without WebGPU: the page says what to enable.
    const bare = await browser.newPage();
    await bare.evaluateOnNewDocument("delete Navigator.prototype.gpu");
    await bare.goto(`http://127.0.0.1:${port}/`);
    const said = await bare.$eval("#platform", (e) => e.textContent ?? "");
    check(
      said.includes("navigator.gpu is undefined") && said.includes("--enable-unsafe-webgpu"),
      "without navigator.gpu the page says what to enable",
      said.slice(0, 80) + "...",
    );
  } finally {
    await browser.close();
    await server.shutdown();
  }

  // The same weights in Deno: the accuracies evaluateAccuracy gives there.
  if (weights.length === 2) {
    if (Deno.build.os === "linux" && !Deno.env.get("DENO_WEBGPU_BACKEND")) {
      Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan"); // as tests/unit.sh does, and why
    }
    const { lenet, Tensor } = await import("../../mod.ts");
    const { DataLoader, evaluateAccuracy, loadFashionMnist } = await import("../../train.ts");
    const test = await loadFashionMnist({ split: "test", download: false });
    using loader = new DataLoader(test, { batchSize: 256, shuffle: false, limit: TEST });
    for (const [i, w] of weights.entries()) {
      using net = lenet({ norm: (i === 0 ? norm : "none") as "batch" });
      const shapes = Object.fromEntries(
        Object.entries(net.stateDict()).map(([k, t]) => {
          const s = [...t.shape];
          t.dispose();
          return [k, s];
        }),
      );
      const sd = Object.fromEntries(
        Object.entries(w).map(([k, v]) => [k, Tensor.from(v, shapes[k])]),
      );
      net.loadStateDict(sd);
      for (const t of Object.values(sd)) t.dispose();
      const deno = {
        batch: await evaluateAccuracy(net, loader, { mode: "train" }),
        running: await evaluateAccuracy(net, loader, { mode: "eval" }),
      };
      const a = pageAcc[i];
      check(
        Math.abs(a.batch! - deno.batch) <= 1e-3 && Math.abs(a.running! - deno.running) <= 1e-3,
        `network ${i + 1}: the page's test accuracies are Deno's for the same weights`,
        `page batch ${a.batch} running ${a.running}; Deno batch ${deno.batch} running ` +
          deno.running,
      );
    }
  }
  console.log(`\n${failures.length ? "FAILED" : "ok"} | ${failures.length} failed (${secs()})`);
  for (const f of failures) console.log(`  ${f}`);
  return failures.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
