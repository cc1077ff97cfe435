/**
 * `deno task bench:compare`: bnlab beside TensorFlow.js and PyTorch, in one run.
 *
 * 1. `deno bench` on bench/compare/side_by_side.ts: the adapter's yardsticks, then every row
 *    validated and timed for bnlab, its float64 reference, tfjs webgpu and tfjs cpu.
 * 2. The PyTorch peer (bench/peers/torch_peer.py) on the same inputs, validated against
 *    bnlab's outputs, if a python3 with torch is found ($BNLAB_PYTHON, /usr/bin/python3,
 *    python3); otherwise its figures are null with the reason.
 * 3. bench/results/latest.json (issue 11's shape, plus the CPU, yardsticks and per-row
 *    details), latest.md (the table with ratios), latest.png (the chart), and a copy of
 *    the JSON named after the adapter, so runs on other adapters sit side by side.
 *
 * Options: `--rows <regex>` (only matching rows), `--budget <factor>` (time per contender,
 * default 1; 0 takes the fewest samples), `--out <dir>` (default bench/results).
 *
 * @module
 */
import { mergeResults, type RawRun, type TorchRun } from "./results.ts";
import { writeReport } from "./report.ts";
import { findTorch } from "../peers/torch.ts";

const here = (p: string) => new URL(p, import.meta.url).pathname;

/** Refuses a bad command line: the message, then exit 2 (nothing run, nothing written). */
function fail(message: string): never {
  console.error(message);
  Deno.exit(2);
}

const OPTIONS = ["rows", "budget", "out"];
for (let i = 0; i < Deno.args.length; i += 2) {
  const [flag, value] = [Deno.args[i], Deno.args[i + 1]];
  if (!OPTIONS.includes(flag.replace(/^--/, "")) || !flag.startsWith("--")) {
    fail(
      `bench:compare: unknown argument ${flag}; the options: --rows <regex>, ` +
        `--budget <factor>, --out <dir>`,
    );
  }
  if (value === undefined || value.startsWith("--")) {
    fail(`bench:compare: ${flag} needs a value`);
  }
}
const budget = Deno.args.includes("--budget") ? Number(option("budget")) : 1;
if (!(budget >= 0)) {
  fail(
    `bench:compare: --budget must be a factor >= 0 (0: fewest samples), ` +
      `got ${option("budget")}`,
  );
}
if (Deno.args.includes("--rows")) {
  try {
    new RegExp(option("rows")!);
  } catch (e) {
    fail(`bench:compare: --rows is not a regular expression: ${(e as Error).message}`);
  }
}

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

/** `Intel(R) Xeon(R) Processor @ 2.00GHz, 2 cores`, from /proc/cpuinfo where there is one. */
async function cpuModel(): Promise<string> {
  const cores = navigator.hardwareConcurrency;
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    const model = info.match(/^model name\s*:\s*(.+)$/m)?.[1].trim();
    if (model) return `${model}, ${cores} cores`;
  } catch { /* not Linux */ }
  return `${Deno.build.arch} CPU, ${cores} cores`;
}

/**
 * The commit the figures are of (`git rev-parse --short HEAD`), with "+ uncommitted
 * changes" when the library's sources differ from it, or why it is unknown.
 */
async function bnlabCommit(): Promise<string> {
  const git = async (...args: string[]) => {
    const r = await new Deno.Command("git", { args, cwd: here("../.."), stderr: "null" }).output();
    if (!r.success) throw new Error(`git ${args[0]} failed`);
    return new TextDecoder().decode(r.stdout).trim();
  };
  try {
    const head = await git("rev-parse", "--short", "HEAD");
    const dirty = await git("status", "--porcelain", "--", "src", "mod.ts", "bench");
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return "unknown (not a git checkout)";
  }
}

const outDir = option("out") ?? here("../results");
const work = await Deno.makeTempDir({ prefix: "bnlab-compare-" });
const started = performance.now();
const loadavg = () => Deno.loadavg().map((v) => Math.round(v * 100) / 100);
const loadAtStart = loadavg();
const minutes = () => ((performance.now() - started) / 60000).toFixed(1);
try {
  console.error(`bench:compare: 1/3 bnlab, float64 reference and TensorFlow.js (deno bench)`);
  const env: Record<string, string> = { BNLAB_COMPARE_OUT: work };
  if (option("rows")) env.BNLAB_COMPARE_ROWS = option("rows")!;
  if (option("budget")) env.BNLAB_COMPARE_BUDGET = option("budget")!;
  const bench = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "-A", here("./side_by_side.ts")],
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  let raw: RawRun;
  try {
    raw = JSON.parse(await Deno.readTextFile(`${work}/deno.json`));
  } catch {
    throw new Error(`deno bench ended (exit ${bench.code}) without writing its results`);
  }
  if (!bench.success) console.error(`deno bench reported failures; they are in the notes`);

  console.error(`bench:compare: 2/3 PyTorch (${minutes()} min so far)`);
  const found = await findTorch();
  let torch: TorchRun | { absent: string };
  if ("python" in found) {
    const r = await new Deno.Command(found.python, {
      args: [here("../peers/torch_peer.py"), work],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    torch = r.success
      ? JSON.parse(new TextDecoder().decode(r.stdout))
      : { absent: `the PyTorch peer failed (exit ${r.code}); see its output above` };
  } else {
    torch = found;
    console.error(`  ${found.absent}`);
  }

  console.error(`bench:compare: 3/3 results (${minutes()} min so far)`);
  const load = { start: loadAtStart, end: loadavg() };
  const results = mergeResults(raw, torch, await cpuModel(), new Date(), load);
  results.versions.bnlab = await bnlabCommit();
  await Deno.mkdir(outDir, { recursive: true });
  const json = JSON.stringify(results, null, 2) + "\n";
  const latest = `${outDir}/latest.json`;
  const slug = results.adapter.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  await Deno.writeTextFile(latest, json);
  await Deno.writeTextFile(`${outDir}/${slug}.json`, json);
  const files = await writeReport(results, latest);
  console.error(
    `bench:compare: wrote ${
      [latest, `${outDir}/${slug}.json`, ...files].join(", ")
    } in ${minutes()} min`,
  );
} finally {
  await Deno.remove(work, { recursive: true });
}
