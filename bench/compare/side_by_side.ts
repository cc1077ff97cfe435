/**
 * bnlab next to TensorFlow.js as `Deno.bench` groups, one group per row of
 * bench/compare/rows.ts: bnlab's float64 reference as the baseline (bnlab itself for the
 * training steps, which have no reference), bnlab on WebGPU, tfjs on WebGPU (the same
 * adapter, a device of its own) and tfjs on the CPU.
 *
 *     deno bench -A bench/compare/side_by_side.ts
 *
 * `deno task bench:compare` (bench/compare/main.ts) runs this file with
 * `BNLAB_COMPARE_OUT=<dir>`; it then also writes `<dir>/deno.json` (times, validations,
 * yardsticks) and `<dir>/cases/` (inputs and bnlab's outputs, for the PyTorch peer).
 * `BNLAB_COMPARE_ROWS=<regex>` keeps only matching rows; `BNLAB_COMPARE_BUDGET=<factor>`
 * scales the time spent per contender (0 gives one timed sample each).
 *
 * Validate, then time. Before anything is timed, bnlab's outputs are checked against the
 * float64 reference (a mismatch stops the run: it is our bug), and every peer's against
 * bnlab's; a peer that cannot run a row is listed as unable, with the error; one whose
 * result differs is timed anyway and flagged, since its figure is then for other work.
 *
 * Timing. A `Deno.bench` iteration is one op (or training step), so times within a group
 * compare. A GPU contender waits for the device once every `reps` ops (the same `reps` for
 * bnlab and tfjs webgpu; bnlab's wait is `gpu.sync()`, tfjs's is its own submit followed by
 * the same queue wait), so each op carries 1/reps of a host wait (~11 ms on llvmpipe).
 * The times recorded for the results are whole blocks of `reps` ops, first op to the end of
 * the wait, divided by `reps`; their median is reported. CPU contenders need no wait.
 * Each contender is warmed up first: its validation run compiles its pipelines, then one
 * untimed block runs unless a block would take over 3 s. A CPU contender whose one op is over
 * the row's budget is timed once, at preparation, and left out of `Deno.bench`'s table (an
 * entry there measures two calls at least).
 *
 * @module
 */
import { gpu } from "../../mod.ts";
import { tf, tfAdapter, type TfBackendName, tfWait, useTfBackend } from "../peers/tfjs.ts";
import { type Contender, describeMismatch, type Outputs, worstMismatch } from "./contender.ts";
import type { Measured, Peer, RawRow, RawRun, TorchCase } from "./results.ts";
import { allRows, type Row } from "./rows.ts";
import { hostWaitMs, measureYardsticks } from "./yardsticks.ts";

const OUT = Deno.env.get("BNLAB_COMPARE_OUT");
const PICK = new RegExp(Deno.env.get("BNLAB_COMPARE_ROWS") ?? "");
const BUDGET = Number(Deno.env.get("BNLAB_COMPARE_BUDGET") ?? 1);
/**
 * bnlab against its float64 reference; peers against bnlab (relative to each output's scale),
 * unless the row sets its own `peerTolerance`.
 */
const REFERENCE_TOLERANCE = 1e-4;
const PEER_TOLERANCE = 1e-3;
/** A warm-up block is skipped when it would take longer than this. */
const WARM_LIMIT_MS = 3000;
const MAX_BLOCKS = 3;
const MAX_CPU_SAMPLES = 10;

const log = (s: string) => console.error(s);
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s`;

const rows = allRows().filter((r) => PICK.test(r.name));
if (rows.length === 0) {
  throw new Error(
    `no row's name matches ${PICK} (BNLAB_COMPARE_ROWS, --rows of bench:compare); the rows: ${
      allRows().map((r) => r.name).join(", ")
    }`,
  );
}

const adapter = (await gpu.adapterInfo()).description;
await useTfBackend("webgpu");
const tfjsAdapter = tfAdapter();
log(`bnlab on ${adapter}; tfjs webgpu on ${tfjsAdapter}`);
const yardsticks = await measureYardsticks();
log(
  `yardsticks: copy ${yardsticks.copy_gbps.toFixed(2)} GB/s, matmul ${
    yardsticks.matmul_gflops.toFixed(2)
  } GFLOP/s, host wait ${yardsticks.host_wait_ms.toFixed(1)} ms`,
);

const run: RawRun = { adapter, tfjsAdapter, yardsticks, rows: [], cases: [] };

/** A contender of one row, ready to be timed. */
interface Entry {
  label: string;
  key: Peer | "reference";
  /** Null for a peer that is unable to run the row. */
  contender: Contender | null;
  backend?: TfBackendName;
  reps: number;
  ops: number;
  measured: Measured;
  samples: number[];
  /** A slow CPU contender whose one op was timed at preparation, not by `Deno.bench`. */
  timedOnce?: boolean;
}

const fmtMs = (ms: number) => ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`;

async function timedMs(fn: () => void | Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/**
 * Warms `c` up (one untimed block, unless that would take over WARM_LIMIT_MS) and decides how
 * many ops to time: whole blocks of `reps` on a GPU (at least one), single ops on a CPU (at
 * least two, which `Deno.bench` needs, unless one op alone is over the budget: then 0, and
 * the caller times one op itself).
 */
async function plan(c: Contender, reps: number, firstMs: number, budgetMs: number) {
  let blockMs = reps * firstMs;
  if (blockMs < WARM_LIMIT_MS) {
    blockMs = await timedMs(async () => {
      for (let i = 0; i < reps; i++) c.run();
      await c.wait();
    });
  }
  const fit = Math.floor((BUDGET * budgetMs) / blockMs);
  if (reps > 1) return reps * Math.max(1, Math.min(MAX_BLOCKS, fit));
  return fit < 1 ? 0 : Math.max(2, Math.min(MAX_CPU_SAMPLES, fit));
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** Validates a contender against `want` and plans its timing; never throws for a peer. */
async function prepare(
  row: Row,
  key: Entry["key"],
  label: string,
  make: () => Contender,
  want: Outputs | null,
  backend?: TfBackendName,
): Promise<{ entry: Entry; outputs: Outputs | null }> {
  const reps = key === "bnlab" || key === "tfjs_webgpu" ? row.reps : 1;
  const measured: Measured = { status: "ok", ms: null, ops: 0, waitsPerOp: 0, note: "" };
  let contender: Contender, outputs: Outputs, firstMs: number;
  try {
    if (backend) await useTfBackend(backend);
    contender = make();
    firstMs = await timedMs(async () => {
      outputs = await contender.validate();
    });
  } catch (e) {
    if (key === "bnlab" || key === "reference") throw e;
    measured.status = "unable";
    measured.note = errorText(e);
    log(`  ${label}: unable: ${measured.note}`);
    return {
      entry: { label, key, contender: null, reps, ops: 0, measured, samples: [] },
      outputs: null,
    };
  }
  if (want) {
    const m = worstMismatch(outputs!, want);
    const tolerance = key === "bnlab" ? REFERENCE_TOLERANCE : row.peerTolerance ?? PEER_TOLERANCE;
    const against = key === "bnlab" ? "the float64 reference" : "bnlab";
    if (!(m.error <= tolerance)) {
      if (key === "bnlab") {
        throw new Error(`bnlab fails validation on ${row.name}: ${describeMismatch(m)}`);
      }
      measured.status = "invalid";
      measured.note = `differs from ${against}: ${describeMismatch(m)}`;
    } else measured.note = `max error ${m.error.toExponential(1)} of scale vs ${against}`;
  } else {
    measured.note = key === "reference" ? "the ground truth" : "no float64 reference for this row";
  }
  // kernels per op: bnlab's dispatches, tfjs's kernel calls (the same graph on both backends)
  if (key !== "tfjs_cpu") measured.launches = await contender.launches?.();
  log(`  ${label}: ${measured.status === "ok" ? "ok" : "INVALID"}, ${measured.note}`);
  let ops = await plan(contender, reps, firstMs!, row.budgetMs);
  measured.waitsPerOp = key === "bnlab" || key === "tfjs_webgpu" ? 1 / reps : 0;
  const samples: number[] = [];
  const timedOnce = ops === 0;
  if (timedOnce) {
    // One op of this CPU contender is over its budget (tfjs cpu's steps take ~45 s): time one
    // op here, after the validation run that warmed it up, instead of the two that a
    // `Deno.bench` entry measures at least. It is then missing from deno bench's table only.
    samples.push(await timedMs(() => contender.run()));
    ops = 1;
    measured.ms = samples[0];
    measured.ops = 1;
    measured.note += "; one op timed (over the row's budget), outside deno bench's table";
    log(`  ${label}: one op timed now, ${fmtMs(samples[0])} (over the row's budget)`);
  }
  return {
    entry: { label, key, contender, backend, reps, ops, measured, samples, timedOnce },
    outputs: outputs!,
  };
}

/** Writes `data` as a little-endian float32 file under the cases directory. */
function writeArray(name: string, data: Float32Array): string {
  Deno.writeFileSync(
    `${OUT}/cases/${name}`,
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
  return name;
}

const groups: { row: Row; raw: RawRow; entries: Entry[] }[] = [];
if (OUT) Deno.mkdirSync(`${OUT}/cases`, { recursive: true });
for (const [k, row] of rows.entries()) {
  log(`[${elapsed()}] [${k + 1}/${rows.length}] ${row.title}: validating and warming up`);
  const inputs = await row.inputs();
  const entries: Entry[] = [];
  let want: Outputs | null = null;
  if (row.reference) {
    const r = await prepare(
      row,
      "reference",
      "float64 reference",
      () => row.reference!(inputs),
      null,
    );
    entries.push(r.entry);
    want = r.outputs;
  }
  const b = await prepare(row, "bnlab", "bnlab", () => row.bnlab(inputs), want);
  entries.push(b.entry);
  const ours = b.outputs!;
  for (const backend of ["webgpu", "cpu"] as const) {
    const key = `tfjs_${backend}` as const;
    const r = await prepare(row, key, `tfjs ${backend}`, () => row.tfjs(inputs), ours, backend);
    entries.push(r.entry);
  }
  const raw: RawRow = {
    name: row.name,
    title: row.title,
    reps: row.reps,
    work: row.work,
    peers: {},
  };
  groups.push({ row, raw, entries });
  run.rows.push(raw);
  if (OUT) {
    const file = (kind: string, j: number) => `${k}_${kind}${j}.f32`;
    const c: TorchCase = {
      name: row.name,
      kind: row.torch.kind,
      args: row.torch.args,
      budgetMs: row.budgetMs * BUDGET,
      tolerance: row.peerTolerance ?? PEER_TOLERANCE,
      inputs: Object.fromEntries(
        Object.entries(inputs).map((
          [n, a],
          j,
        ) => [n, { file: writeArray(file("in", j), a.data), shape: a.shape }]),
      ),
      expect: Object.fromEntries(
        Object.entries(ours).map(([n, a], j) => [n, { file: writeArray(file("out", j), a) }]),
      ),
    };
    run.cases.push(c);
  }
}

const median = (a: number[]) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * `Deno.bench` (Deno 2.9) warms up by calling a function until 10 ms have passed, then
 * measures `n + 1` calls, whatever `warmup` says. The contenders are warm already
 * (validation, then `plan`), so the first call only spends those 10 ms (it settles the
 * device, switches the tfjs backend and waits), and the measured calls are exactly the
 * planned ops: whole blocks of `reps` on a GPU, so the figures `Deno.bench` prints are per
 * op too. The results use the blocks recorded here, not `Deno.bench`'s statistics.
 */
const DENO_WARMUP_MS = 10;
/** A GPU contender whose last block was not waited for (if `Deno.bench` stopped mid-block). */
let unsettled: Entry | null = null;

function register(row: Row, e: Entry, baseline: boolean): void {
  const waits = e.reps > 1 ? `, 1 wait per ${e.reps} ops` : "";
  const flag = e.measured.status === "invalid" ? " [result differs]" : "";
  let calls = 0, blockStart = 0;
  Deno.bench({
    name: `${e.label}${waits}${flag}`,
    group: row.title,
    baseline,
    n: e.ops - 1,
    warmup: 1,
    async fn(b) {
      if (calls++ === 0) {
        log(`[${elapsed()}] timing ${row.title}: ${e.label}, ${e.ops} ops`);
        const t = performance.now();
        await unsettled?.contender?.wait();
        unsettled = null;
        if (e.backend && tf.getBackend() !== e.backend) await useTfBackend(e.backend);
        await e.contender!.wait();
        const left = DENO_WARMUP_MS + 1 - (performance.now() - t);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
        return;
      }
      const k = calls - 2; // ops so far
      b.start();
      try {
        if (k % e.reps === 0) {
          blockStart = performance.now();
          unsettled = e;
        }
        e.contender!.run();
        if ((k + 1) % e.reps === 0) {
          await e.contender!.wait();
          unsettled = null;
          e.samples.push((performance.now() - blockStart) / e.reps);
          e.measured.ms = median(e.samples);
          e.measured.ops = e.samples.length * e.reps;
        }
      } catch (err) {
        e.measured.status = "failed";
        e.measured.note = errorText(err);
        e.measured.ms = null;
        throw err;
      }
      b.end();
    },
  });
}

for (const { row, raw, entries } of groups) {
  const baseline = entries.some((e) => e.key === "reference") ? "reference" : "bnlab";
  for (const e of entries) {
    if (e.key === "reference") raw.reference = e.measured;
    else raw.peers[e.key] = e.measured;
    if (e.timedOnce) continue;
    if (e.measured.status !== "unable") register(row, e, e.key === baseline);
    else {
      const name = `${e.label}: unable (${e.measured.note})`;
      Deno.bench({ name, group: row.title, ignore: true, fn() {} });
    }
  }
}

// The price of a host wait on each side, as a group of its own.
for (
  const [name, wait, backend] of [["bnlab gpu.sync()", () => gpu.sync(), undefined], [
    "tfjs webgpu submit + queue wait",
    tfWait,
    "webgpu",
  ]] as const
) {
  Deno.bench({
    name,
    group: "one host wait, nothing queued",
    baseline: backend === undefined,
    n: 10,
    warmup: 1,
    async fn(b) {
      if (backend && tf.getBackend() !== backend) await useTfBackend(backend);
      b.start();
      await wait();
      b.end();
    },
  });
}
await useTfBackend("webgpu");
yardsticks.tfjs_host_wait_ms = await hostWaitMs(tfWait);
log(`[${elapsed()}] validated ${rows.length} rows; timing`);

globalThis.addEventListener("unload", () => {
  if (!OUT) return;
  Deno.writeTextFileSync(`${OUT}/deno.json`, JSON.stringify(run, null, 1));
  log(`[${elapsed()}] wrote ${OUT}/deno.json`);
});
