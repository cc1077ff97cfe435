/**
 * `deno task test:browser`: runs the op, layer, tensor, optimizer and model tests in
 * headless Chromium (Dawn's WebGPU, Tint's WGSL compiler, SwiftShader on a machine without a
 * GPU), against the same float64 references as `deno test`; checks that every `@compute`
 * entry point of every .wgsl file in src/ was created there; that mod.ts bundled alone runs in
 * a page; and runs one seeded workload (tests/browser/workload.ts) here and in the page, which
 * must agree within 1e-4 of each array's largest value.
 *
 *     deno run -A tests/browser/run.ts [FILTER...] [--timeout=SECONDS] [--no-coverage]
 *       [--no-workload] [--save-workload=DIR]
 *
 * A FILTER keeps the tests whose name or file contains it (coverage is still checked, and
 * fails: `--no-coverage` when iterating on a few tests). `--save-workload` writes both runs
 * of the workload as JSON, to see where they differ. Per-test timeout: 60 s. Steps: bundle
 * tests/browser/suite.ts for the browser (node:assert/strict mapped to tests/browser/assert.ts)
 * into a temporary folder, serve it on 127.0.0.1 (WebGPU needs a secure context, which
 * about:blank is not), then run each test alone in the page with a per-test timeout. Exits
 * non-zero on a failed test, an error in the page, a timeout, a kernel never created, or a
 * workload difference past the tolerance.
 *
 * @module
 */
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@25.19.0";
import { coverageGaps } from "./coverage.ts";
import type { WorkloadResult } from "./workload.ts";
import type { TestResult } from "./suite.ts";

const root = new URL("../../", import.meta.url).pathname;

/** Folders whose every `*_test.ts` runs in the page, unless {@link NOT_IN_BROWSER} says why not. */
const FOLDERS = [
  "tests/ops",
  "tests/nn",
  "tests/tensor",
  "tests/optim",
  "tests/models",
  "tests/gpu",
];

/** Test files of {@link FOLDERS} that the page does not load, and why. */
const NOT_IN_BROWSER: Record<string, string> = {
  "tests/gpu/two_copies_test.ts":
    "copies the tree to a temporary folder and imports it from there (a page has one bundle)",
  "tests/models/lecture_batch_norm_test.ts":
    "loads Fashion-MNIST from the file system when imported (the kernels it runs are covered)",
  "tests/gpu/namespace_doc_test.ts": "runs `deno doc` in a process of its own",
  "tests/gpu/quiet_wayland_test.ts":
    "starts a Deno process to read its output (Mesa's Wayland probe; a page has no such lines)",
};

/**
 * Tests the page registers but does not run, and why (by a substring of the name). An entry
 * that matches no test fails the run, so this list cannot go stale.
 */
const SKIPPED: Record<string, string> = {
  "stays flat in memory over 1,000 steps": "reads the process's resident memory (Deno.memoryUsage)",
  "using a freed tensor says where it was disposed":
    "expects the test file in a stack trace; in the bundle every frame is suite.js",
  "DataLoader on the real Fashion-MNIST test split":
    "reads Fashion-MNIST from the file system (apt-get install dataset-fashion-mnist)",
  "tiles 4x8,8x4,8x8,8x12 vs float64 reference":
    "every tile of llvmpipe's convolution forced in turn: run in Deno (22 s here); in the page the " +
    "other conv2d@llvmpipe cases run its kernels with the plans the schedule picks",
  "every kernel's uniform struct is read by the GPU as packed by name":
    "lists src/'s .wgsl files with Deno.readDir (the probe of a struct of every layout rule runs)",
};

const CHROMIUM_PATHS = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

interface Options {
  filters: string[];
  timeoutMs: number;
  coverage: boolean;
  workload: boolean;
  /** A folder to write both runs of the workload to (deno.json, chromium.json). */
  saveWorkload?: string;
}

function parseArgs(args: string[]): Options {
  const o: Options = { filters: [], timeoutMs: 60_000, coverage: true, workload: true };
  for (const a of args) {
    if (a.startsWith("--timeout=")) o.timeoutMs = Number(a.slice(10)) * 1000;
    else if (a === "--no-coverage") o.coverage = false;
    else if (a === "--no-workload") o.workload = false;
    else if (a.startsWith("--save-workload=")) o.saveWorkload = a.slice(16);
    else if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
    else o.filters.push(a.replace(/^\.\//, ""));
  }
  if (!(o.timeoutMs > 0)) throw new Error("--timeout takes a number of seconds > 0");
  return o;
}

/** Chromium's executable: $BNLAB_CHROMIUM if set, else the first of CHROMIUM_PATHS there. */
function chromiumPath(): string | undefined {
  const env = Deno.env.get("BNLAB_CHROMIUM");
  return (env ? [env] : CHROMIUM_PATHS).find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

/** Every file under `dir` (relative to the repository root) whose name passes `keep`. */
function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(root + dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...filesUnder(p, keep));
    else if (keep(e.name)) out.push(p);
  }
  return out.sort();
}

/** Runs `deno bundle --platform=browser` on `entry` (relative to the root) into `out`. */
async function bundle(entry: string, out: string, flags: string[] = []): Promise<void> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform=browser", ...flags, `--output=${out}`, root + entry],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!r.success) throw new Error(`deno bundle ${entry} failed (exit ${r.code})`);
}

// Dynamic imports, so that a module that fails to load is reported, not waited for.
const PAGES: Record<string, string> = {
  "/": `<!doctype html><meta charset="utf-8"><title>bnlab tests</title>
<script type="module">
import("/suite.js").catch((e) => globalThis.bnlabLoadError = String(e?.stack ?? e));
</script>`,
  // The core as README.md shows it: mod.ts bundled alone, in a page with no Deno shim.
  "/core.html": `<!doctype html><meta charset="utf-8"><title>bnlab core</title>
<script type="module">
try {
  const { nn, Tensor, print } = await import("/bnlab.js");
  const bn = new nn.BatchNorm2d(3);
  const y = bn.forward(Tensor.randn([8, 3, 5, 5], { seed: 0 }));
  const means = await y.mean([0, 2, 3]).toArray();
  print("per-channel means", means); // print() formats a non-string without Deno.inspect
  const ok = !("Deno" in globalThis) && means.every((m) => Math.abs(m) < 1e-5);
  globalThis.coreResult = { ok, detail: \`means \${means}, Deno \${typeof Deno}\` };
} catch (e) {
  globalThis.coreResult = { ok: false, detail: String(e?.stack ?? e) };
}
</script>`,
};

function serve(dir: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path in PAGES) {
      return new Response(PAGES[path], { headers: { "content-type": "text/html" } });
    }
    if (path === "/suite.js" || path === "/bnlab.js") {
      return new Response(await Deno.readFile(dir + path), {
        headers: { "content-type": "text/javascript" },
      });
    }
    return new Response(null, { status: 404 });
  });
}

/** Imports the bundle of mod.ts alone in a page, as README.md shows; throws if it fails. */
async function checkCore(browser: Browser, url: string): Promise<void> {
  const page = await browser.newPage();
  try {
    await page.goto(`${url}core.html`);
    await page.waitForFunction("globalThis.coreResult", { timeout: 120_000 });
    const r = await page.evaluate("globalThis.coreResult") as { ok: boolean; detail: string };
    if (!r.ok) throw new Error(r.detail);
  } finally {
    await page.close();
  }
}

/** Errors the page reported outside a test's own result (uncaught, unhandled, a crash). */
const pageErrors: string[] = [];

async function openPage(browser: Browser, url: string, sources: Record<string, string>) {
  const page = await browser.newPage();
  page.on("console", (m) => console.log(`  [page ${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => pageErrors.push(`page error: ${e instanceof Error ? e.stack : e}`));
  page.on("error", (e) => pageErrors.push(`page crashed: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction("globalThis.bnlab || globalThis.bnlabLoadError", {
    timeout: 300_000,
  });
  const loadError = await page.evaluate("globalThis.bnlabLoadError") as string | undefined;
  if (loadError) throw new Error(`the test suite failed to load in the page:\n${loadError}`);
  await page.evaluate((s) => globalThis.bnlab.setSources(s), sources);
  return page;
}

declare global {
  // The page's API (tests/browser/suite.ts), as seen from page.evaluate callbacks.
  var bnlab: {
    tests(): { name: string; file: string; ignore: boolean }[];
    files(): string[];
    setSources(s: Record<string, string>): void;
    collectGarbage(): Promise<void>;
    run(name: string): Promise<TestResult>;
    workload(): Promise<Record<string, number[]>>;
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const ms = (x: number) => x < 1000 ? `${Math.round(x)}ms` : `${(x / 1000).toFixed(1)}s`;

async function main(args: string[]): Promise<number> {
  const opts = parseArgs(args);
  const t0 = performance.now();
  const chromium = chromiumPath();
  if (!chromium) {
    const env = Deno.env.get("BNLAB_CHROMIUM");
    console.error(
      `test:browser: no Chromium at ${
        env ? `$BNLAB_CHROMIUM (${env})` : CHROMIUM_PATHS.join(", ")
      }` +
        ". Install it with: apt-get install -y chromium (Debian 12), or set BNLAB_CHROMIUM to " +
        "the path of a Chromium or Chrome with WebGPU.",
    );
    return 1;
  }
  const sources = Object.fromEntries(
    filesUnder("src", (n) => n.endsWith(".wgsl")).map((f) => [f, Deno.readTextFileSync(root + f)]),
  );

  // The workload in Deno first, alone on the CPU (the page's WebGPU is a CPU device too).
  let denoWorkload: WorkloadResult | undefined;
  let compareWorkloads: typeof import("./workload.ts").compareWorkloads | undefined;
  if (opts.workload) {
    if (Deno.build.os === "linux" && !Deno.env.get("DENO_WEBGPU_BACKEND")) {
      Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan"); // as tests/unit.sh does, and why
    }
    // Imported here, not above: importing the library acquires the WebGPU device.
    const w = await import("./workload.ts");
    compareWorkloads = w.compareWorkloads;
    const workload = w.workload;
    const w0 = performance.now();
    denoWorkload = await workload();
    console.log(`workload in Deno ... ok (${ms(performance.now() - w0)})`);
  }

  const dir = await Deno.makeTempDir({ prefix: "bnlab-browser-" });
  const server = serve(dir);
  let browser: Browser | undefined;
  const failures: { name: string; file: string; error: string }[] = [];
  let passed = 0, skipped = 0;
  const created = new Set<string>(); // "file: entry point" of every pipeline created
  const marked = new Set<string>();
  try {
    const b0 = performance.now();
    await bundle("mod.ts", `${dir}/bnlab.js`);
    await bundle("tests/browser/suite.ts", `${dir}/suite.js`, [
      "--keep-names", // tests read constructor.name, which esbuild renames on collisions
      `--import-map=${root}tests/browser/import_map.json`,
    ]);
    console.log(`bundled mod.ts and tests/browser/suite.ts (${ms(performance.now() - b0)})`);
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      protocolTimeout: 2 * opts.timeoutMs + 300_000, // our own timeouts come first
      args: [
        "--headless=new",
        "--no-sandbox", // root in CI containers
        "--enable-unsafe-webgpu", // WebGPU on Linux is behind this flag in Chromium 156
        "--js-flags=--expose-gc", // collectGarbage() between test files
        // e.g. "--enable-features=Vulkan --use-vulkan=native --ignore-gpu-blocklist" for a real
        // GPU instead of SwiftShader (bench/train/gpu_check.sh)
        ...(Deno.env.get("BNLAB_CHROMIUM_ARGS") ?? "").split(/\s+/).filter((a) => a.length),
      ],
    });
    const url = `http://127.0.0.1:${server.addr.port}/`;
    const c0 = performance.now();
    const core = "mod.ts bundled alone runs in a page without Deno";
    try {
      await checkCore(browser, url);
      passed++;
      console.log(`${core} ... ok (${ms(performance.now() - c0)})`);
    } catch (e) {
      failures.push({ name: core, file: "mod.ts", error: String(e) });
      console.log(`${core} ... FAILED (${ms(performance.now() - c0)})`);
    }
    let page: Page = await openPage(browser, url, sources);
    console.log(
      `chromium ${await browser.version()}, adapter: ${await page.evaluate(async () => {
        const a = await navigator.gpu.requestAdapter();
        return a ? `${a.info.vendor} ${a.info.architecture} ${a.info.description}` : "none";
      })}`,
    );

    // Every test file of the folders is in the page, or left out with a reason.
    const inPage = new Set(await page.evaluate(() => globalThis.bnlab.files()));
    const missing = FOLDERS.flatMap((d) => filesUnder(d, (n) => n.endsWith("_test.ts")))
      .filter((f) => !inPage.has(f) && !(f in NOT_IN_BROWSER));
    for (const f of missing) {
      failures.push({ name: "(suite)", file: f, error: "not in tests/browser/suite.ts's FILES" });
    }

    const all = await page.evaluate(() => globalThis.bnlab.tests());
    for (const key of Object.keys(SKIPPED)) {
      if (!all.some((t) => t.name.includes(key))) {
        failures.push({
          name: "(suite)",
          file: "tests/browser/run.ts",
          error: `SKIPPED names "${key}", which matches no test: remove it`,
        });
      }
    }
    const tests = all.filter((t) =>
      !opts.filters.length || opts.filters.some((f) => t.name.includes(f) || t.file.includes(f))
    );
    console.log(`running ${tests.length} of ${all.length} tests in the page`);
    let file = "";
    for (const t of tests) {
      if (t.file !== file) {
        // Test files share the page (a page per file cost 47 s more, compiling the common
        // kernels again in each), but not their garbage.
        await page.evaluate(() => globalThis.bnlab.collectGarbage());
        console.log(`${file = t.file}:`);
      }
      const skip = t.ignore
        ? "ignore: true"
        : Object.entries(SKIPPED).find(([k]) => t.name.includes(k))?.[1];
      if (skip) {
        console.log(`${t.name} ... skipped (${skip})`);
        skipped++;
        continue;
      }
      const errorsBefore = pageErrors.length;
      let r: TestResult;
      try {
        r = await withTimeout(
          page.evaluate((n) => globalThis.bnlab.run(n), t.name),
          opts.timeoutMs,
          "the test",
        );
      } catch (e) {
        // A test that hangs holds the page: fail it, then carry on in a fresh page.
        r = { ok: false, ms: opts.timeoutMs, error: String(e), pipelines: [], variants: [] };
        await page.close().catch(() => {});
        page = await openPage(browser, url, sources);
      }
      const errors = pageErrors.splice(errorsBefore);
      if (errors.length) r = { ...r, ok: false, error: [r.error, ...errors].join("\n") };
      for (const p of r.pipelines) created.add(`${p.file}: ${p.entryPoint}`);
      for (const v of r.variants) marked.add(v);
      if (r.ok) {
        passed++;
        console.log(`${t.name} ... ok (${ms(r.ms)})`);
      } else {
        // Name the kernels whose pipelines the error names, by file and entry point.
        const named = r.pipelines.filter((p) => r.error!.includes(p.label)).map((p) =>
          `  kernel ${p.file}, entry point ${p.entryPoint} (pipeline "${p.label}")`
        );
        failures.push({ name: t.name, file: t.file, error: [r.error!, ...named].join("\n") });
        console.log(`${t.name} ... FAILED (${ms(r.ms)})`);
      }
    }

    if (opts.workload) {
      const w0 = performance.now();
      const inPage = await withTimeout(
        page.evaluate(() => globalThis.bnlab.workload()),
        opts.timeoutMs,
        "the workload",
      );
      const c = compareWorkloads!(denoWorkload!, inPage);
      if (opts.saveWorkload) {
        const json = (w: WorkloadResult) =>
          JSON.stringify(Object.fromEntries(Object.entries(w).map(([k, v]) => [k, Array.from(v)])));
        await Deno.mkdir(opts.saveWorkload, { recursive: true });
        await Deno.writeTextFile(`${opts.saveWorkload}/deno.json`, json(denoWorkload!));
        await Deno.writeTextFile(`${opts.saveWorkload}/chromium.json`, json(inPage));
      }
      const worst = c.worst
        ? `worst ${c.worst.name}[${c.worst.index}]: ${c.worst.a} in Deno, ${c.worst.b} in ` +
          `Chromium, a difference of ${c.worst.rel.toExponential(2)} of the array's largest`
        : "no values";
      if (c.errors.length) {
        failures.push({
          name: "workload: Deno and Chromium agree",
          file: "tests/browser/workload.ts",
          error: [...c.errors, worst].join("\n"),
        });
        console.log(`workload: Deno and Chromium agree ... FAILED (${ms(performance.now() - w0)})`);
      } else {
        passed++;
        console.log(
          `workload: Deno and Chromium agree ... ok (${ms(performance.now() - w0)}; ` +
            `${c.values} values, ${worst})`,
        );
      }
    }
    if (pageErrors.length) {
      failures.push({ name: "(page)", file: "", error: pageErrors.splice(0).join("\n") });
    }

    if (opts.coverage) {
      const gaps = coverageGaps(sources, created, marked);
      const n = Object.keys(sources).length;
      if (gaps.entryPoints.length || gaps.variants.length) {
        failures.push({
          name: "coverage: every kernel entry point and every schedule ran in the browser",
          file: "tests/browser/coverage.ts",
          error: [
            ...gaps.entryPoints.map((k) => `  entry point never created: ${k}`),
            ...gaps.variants.map((v) => `  schedule never run: ${v}`),
            opts.filters.length ? "  (a filtered run: --no-coverage skips this check)" : "",
          ].join("\n"),
        });
        console.log(
          "coverage: every kernel entry point and every schedule ran in the browser ... FAILED",
        );
      } else {
        passed++;
        console.log(
          `coverage: every kernel entry point and every schedule ran in the browser ... ok ` +
            `(${created.size} entry points of ${n} .wgsl files; schedules ${
              [...marked].sort().join(", ")
            })`,
        );
      }
    }
  } finally {
    await browser?.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }

  const total = ms(performance.now() - t0);
  if (failures.length) {
    console.log("\n ERRORS \n");
    for (const f of failures) {
      console.log(`${f.name}${f.file ? ` => ${f.file}` : ""}\n${f.error}\n`);
    }
    console.log(" FAILURES \n");
    for (const f of failures) console.log(`${f.name}${f.file ? ` => ${f.file}` : ""}`);
  }
  console.log(
    `\n${failures.length ? "FAILED" : "ok"} | ${passed} passed | ${failures.length} failed | ` +
      `${skipped} skipped (${total})`,
  );
  return failures.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
