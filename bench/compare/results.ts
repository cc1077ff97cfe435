/**
 * The shapes of the comparison's results: what one library measured on one row, what the
 * `Deno.bench` side (bench/compare/side_by_side.ts) and the PyTorch peer hand over, and the
 * committed `bench/results/latest.json`.
 *
 * @module
 */
import type { Yardsticks } from "./yardsticks.ts";

/** The libraries of the comparison, as named in the results. */
export const PEERS = ["bnlab", "tfjs_webgpu", "tfjs_cpu", "pytorch_cpu"] as const;
/** One of {@link PEERS}. */
export type Peer = typeof PEERS[number];

/** What one library did on one row. */
export interface Measured {
  /**
   * `ok`: validated, then timed. `invalid`: timed, but its first result did not match
   * bnlab's (the figure is kept and flagged). `unable`: the library cannot do it.
   * `failed`: it threw while being timed. `absent`: the library is not installed.
   */
  status: "ok" | "invalid" | "unable" | "failed" | "absent";
  /** Median milliseconds per op (host waits included, amortised), or null. */
  ms: number | null;
  /** Ops timed. */
  ops: number;
  /** Host waits paid per op (1 / reps on a GPU, 0 on a CPU). */
  waitsPerOp: number;
  /** Validation result (`max error 3.1e-7 of scale`) or the reason for a null. */
  note: string;
  /** Kernels per op: bnlab's WebGPU dispatches, tfjs's kernel calls (one dispatch or more each). */
  launches?: number;
}

/** One row as measured by the `Deno.bench` side. */
export interface RawRow {
  name: string;
  title: string;
  reps: number;
  work: { bytes: number } | { flop: number };
  /** bnlab's float64 reference, the `Deno.bench` baseline. */
  reference?: Measured;
  peers: Partial<Record<Peer, Measured>>;
}

/** A row handed to the PyTorch peer: how to run it and what bnlab's outputs were. */
export interface TorchCase {
  name: string;
  kind: string;
  args: Record<string, unknown>;
  budgetMs: number;
  /** Float32 little-endian files, relative to the cases directory, with their shapes. */
  inputs: Record<string, { file: string; shape: number[] }>;
  expect: Record<string, { file: string }>;
  /** Largest error accepted, relative to each output's largest magnitude. */
  tolerance: number;
}

/** Everything the `Deno.bench` side writes for the task. */
export interface RawRun {
  adapter: string;
  tfjsAdapter: string | null;
  yardsticks: Yardsticks;
  rows: RawRow[];
  cases: TorchCase[];
}

/** What the PyTorch peer prints: its version and a result per row. */
export interface TorchRun {
  torch: string;
  threads: number;
  rows: Record<string, Measured>;
}

/** A row of latest.json, exactly as issue 11 gives it. */
export interface ResultRow {
  name: string;
  unit: "ms";
  bnlab: number | null;
  tfjs_webgpu: number | null;
  tfjs_cpu: number | null;
  pytorch_cpu: number | null;
}

/** bench/results/latest.json. */
export interface Results {
  adapter: string;
  cpu: string;
  date: string;
  rows: ResultRow[];
  /** One line per null figure, failed validation or caveat. */
  notes: string[];
  yardsticks: Yardsticks;
  /** Per row: title, work, host waits and validation of each library, the reference's time. */
  details: Record<string, {
    title: string;
    reps: number;
    work: { bytes: number } | { flop: number };
    reference_ms: number | null;
    peers: Partial<Record<Peer, Omit<Measured, "ms">>>;
  }>;
  /** Versions of the peers, and bnlab's commit (`bnlab`). */
  versions: Record<string, string>;
  /** The machine's 1/5/15-minute load averages when the run started and ended. */
  load: { start: number[]; end: number[] };
}

/** Merges the two sides into latest.json's shape. */
export function mergeResults(
  raw: RawRun,
  torch: TorchRun | { absent: string },
  cpu: string,
  date: Date,
  load: Results["load"],
): Results {
  const notes: string[] = [];
  const versions: Record<string, string> = { tfjs: "4.22.0", deno: Deno.version.deno };
  const cores = navigator.hardwareConcurrency;
  const busiest = Math.max(load.start[0], load.end[0]);
  if (busiest > cores) {
    notes.push(
      `the machine was shared: 1-minute load average up to ${busiest} on ${cores} cores, so ` +
        `absolute times are inflated and noisy; compare ratios within this run`,
    );
  }
  if ("absent" in torch) notes.push(`pytorch_cpu: absent (${torch.absent})`);
  else versions.torch = `${torch.torch} (${torch.threads} thread${torch.threads === 1 ? "" : "s"})`;
  const rows: ResultRow[] = [];
  const details: Results["details"] = {};
  for (const r of raw.rows) {
    const peers: Partial<Record<Peer, Measured>> = { ...r.peers };
    peers.pytorch_cpu = "absent" in torch
      ? { status: "absent", ms: null, ops: 0, waitsPerOp: 0, note: torch.absent }
      : torch.rows[r.name] ??
        { status: "failed", ms: null, ops: 0, waitsPerOp: 0, note: "no result from the peer" };
    const row: ResultRow = {
      name: r.name,
      unit: "ms",
      bnlab: null,
      tfjs_webgpu: null,
      tfjs_cpu: null,
      pytorch_cpu: null,
    };
    details[r.name] = {
      title: r.title,
      reps: r.reps,
      work: r.work,
      reference_ms: r.reference?.ms ?? null,
      peers: {},
    };
    for (const p of PEERS) {
      const m = peers[p];
      if (!m) continue;
      row[p] = m.ms === null ? null : +m.ms.toPrecision(4);
      const { ms: _, ...rest } = m;
      details[r.name].peers[p] = rest;
      if (m.status !== "ok" && !(m.status === "absent" && "absent" in torch)) {
        notes.push(`${p} ${r.name}: ${m.status} (${m.note})`);
      }
    }
    rows.push(row);
  }
  return {
    adapter: raw.adapter,
    cpu,
    date: date.toISOString(),
    rows,
    notes,
    yardsticks: raw.yardsticks,
    details,
    versions,
    load,
  };
}
