/**
 * The browser suite's entry: bundled by tests/browser/run.ts with
 * `deno bundle --platform browser` (node:assert/strict mapped to ./assert.ts), it installs
 * a small `Deno` shim, imports the same test files that `deno test` runs, and exposes
 * `globalThis.bnlab` for the runner to list the tests, run them one at a time, read which
 * compute pipelines each created, and run the cross-implementation workload.
 *
 * A test file is listed here by hand (a bundler needs each `import()` spelled out);
 * run.ts fails if a test file of the folders it runs is neither listed nor left out with a
 * reason there.
 *
 * @module
 */
import { installDenoShim, registered, setFile } from "./deno_shim.ts";
import { pipelinesCreated } from "../../src/gpu/pipeline.ts";
import { scheduleOf } from "./coverage.ts";
import { workload } from "./workload.ts";

/** The test files the page runs, each imported after the shim is installed. */
export const FILES: Record<string, () => Promise<unknown>> = {
  "tests/ops/activation_test.ts": () => import("../ops/activation_test.ts"),
  "tests/ops/batch_norm_test.ts": () => import("../ops/batch_norm_test.ts"),
  "tests/ops/block_norm_test.ts": () => import("../ops/block_norm_test.ts"),
  "tests/ops/conv2d_test.ts": () => import("../ops/conv2d_test.ts"),
  "tests/ops/cross_entropy_test.ts": () => import("../ops/cross_entropy_test.ts"),
  "tests/ops/cross_entropy_targets_test.ts": () => import("../ops/cross_entropy_targets_test.ts"),
  "tests/ops/dropout_test.ts": () => import("../ops/dropout_test.ts"),
  "tests/ops/elementwise_test.ts": () => import("../ops/elementwise_test.ts"),
  "tests/ops/layer_norm_test.ts": () => import("../ops/layer_norm_test.ts"),
  "tests/ops/linear_test.ts": () => import("../ops/linear_test.ts"),
  "tests/ops/pool_test.ts": () => import("../ops/pool_test.ts"),
  "tests/ops/random_test.ts": () => import("../ops/random_test.ts"),
  "tests/ops/reduce_test.ts": () => import("../ops/reduce_test.ts"),
  "tests/nn/batch_norm_test.ts": () => import("../nn/batch_norm_test.ts"),
  "tests/nn/conv_test.ts": () => import("../nn/conv_test.ts"),
  "tests/nn/from_scratch_batch_norm_test.ts": () => import("../nn/from_scratch_batch_norm_test.ts"),
  "tests/nn/fused_pairs_test.ts": () => import("../nn/fused_pairs_test.ts"),
  "tests/nn/ghost_batch_norm_test.ts": () => import("../nn/ghost_batch_norm_test.ts"),
  "tests/nn/group_norm_test.ts": () => import("../nn/group_norm_test.ts"),
  "tests/nn/init_test.ts": () => import("../nn/init_test.ts"),
  "tests/nn/layer_norm_test.ts": () => import("../nn/layer_norm_test.ts"),
  "tests/nn/linear_test.ts": () => import("../nn/linear_test.ts"),
  "tests/nn/module_test.ts": () => import("../nn/module_test.ts"),
  "tests/nn/modules_test.ts": () => import("../nn/modules_test.ts"),
  "tests/nn/norm_options_test.ts": () => import("../nn/norm_options_test.ts"),
  "tests/nn/pooling_test.ts": () => import("../nn/pooling_test.ts"),
  "tests/nn/repr_test.ts": () => import("../nn/repr_test.ts"),
  "tests/tensor/anomaly_test.ts": () => import("../tensor/anomaly_test.ts"),
  "tests/tensor/arguments_test.ts": () => import("../tensor/arguments_test.ts"),
  "tests/tensor/autograd_test.ts": () => import("../tensor/autograd_test.ts"),
  "tests/tensor/ownership_test.ts": () => import("../tensor/ownership_test.ts"),
  "tests/tensor/tensor_test.ts": () => import("../tensor/tensor_test.ts"),
  "tests/tensor/tidy_test.ts": () => import("../tensor/tidy_test.ts"),
  "tests/tensor/methods_test.ts": () => import("../tensor/methods_test.ts"),
  "tests/optim/sgd_test.ts": () => import("../optim/sgd_test.ts"),
  "tests/optim/adam_test.ts": () => import("../optim/adam_test.ts"),
  "tests/optim/schedulers_test.ts": () => import("../optim/schedulers_test.ts"),
  "tests/optim/state_dict_test.ts": () => import("../optim/state_dict_test.ts"),
  "tests/models/lenet_test.ts": () => import("../models/lenet_test.ts"),
  "tests/models/lenet_small_batch_test.ts": () => import("../models/lenet_small_batch_test.ts"),
  "tests/gpu/bind_groups_test.ts": () => import("../gpu/bind_groups_test.ts"),
  "tests/gpu/buffer_pool_test.ts": () => import("../gpu/buffer_pool_test.ts"),
  "tests/gpu/device_test.ts": () => import("../gpu/device_test.ts"),
  "tests/gpu/queue_test.ts": () => import("../gpu/queue_test.ts"),
  "tests/gpu/profile_launches_test.ts": () => import("../gpu/profile_launches_test.ts"),
  "tests/gpu/profile_test.ts": () => import("../gpu/profile_test.ts"),
  "tests/gpu/uniforms_test.ts": () => import("../gpu/uniforms_test.ts"),
  // The one user of src/data/gather.wgsl (the rest of tests/data/ reads files).
  "tests/data/loader_test.ts": () => import("../data/loader_test.ts"),
};

/** What the page sends back for one test. */
export interface TestResult {
  ok: boolean;
  ms: number;
  error?: string;
  /** Compute pipelines the test created (first use in this page), with their WGSL file. */
  pipelines: {
    label: string;
    entryPoint: string;
    constants: Record<string, number>;
    file: string;
  }[];
  /** Schedules (`op@schedule`) whose kernels the test created, read off the labels. */
  variants: string[];
}

let sources = new Map<string, string>(); // WGSL text -> its file, from the runner
let loading = ""; // the test file being imported, named if its import fails
let seenPipelines = 0;

function newlyCreated(): Pick<TestResult, "pipelines" | "variants"> {
  const all = pipelinesCreated();
  const pipelines = all.slice(seenPipelines).map((p) => ({
    label: p.label,
    entryPoint: p.entryPoint,
    constants: { ...p.constants },
    file: sources.get(p.code) ?? "(WGSL from no file in src/)",
  }));
  seenPipelines = all.length;
  const variants = [
    ...new Set(pipelines.map((p) => scheduleOf(p.label)).filter((v): v is string => !!v)),
  ];
  return { pipelines, variants };
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    // Chromium's stack starts with the message; V8 lists the frames in the bundle.
    return e.stack?.includes(e.message) ? e.stack : `${e.name}: ${e.message}\n${e.stack ?? ""}`;
  }
  return String(e);
}

const api = {
  /** Test files imported and the tests they registered. */
  tests: () => registered.map(({ name, file, ignore }) => ({ name, file, ignore })),
  files: () => Object.keys(FILES),
  /** WGSL sources by file, so that each pipeline can be traced to its .wgsl file. */
  setSources(byFile: Record<string, string>): void {
    sources = new Map(Object.entries(byFile).map(([file, text]) => [text, file]));
  },
  /** Runs one test by name. */
  async run(name: string): Promise<TestResult> {
    const t = registered.find((r) => r.name === name);
    if (!t) throw new Error(`no test named "${name}"`);
    const t0 = performance.now();
    try {
      await t.fn();
      return { ok: true, ms: performance.now() - t0, ...newlyCreated() };
    } catch (e) {
      return { ok: false, ms: performance.now() - t0, error: describe(e), ...newlyCreated() };
    }
  },
  /**
   * Collects the garbage that earlier tests left (tensors nobody disposed, freed by their
   * finalizers), so that the next test file starts as in an isolate of its own, as under
   * `deno test`: a memory count taken during a test then moves by that test's doing alone.
   * Needs Chromium's --js-flags=--expose-gc.
   */
  async collectGarbage(): Promise<void> {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error("gc() is not exposed: start Chromium with --js-flags=--expose-gc");
    gc();
    // Finalization callbacks run in tasks of their own after the collection.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  },
  /** The seeded cross-implementation workload, as plain arrays (JSON-safe). */
  async workload(): Promise<Record<string, number[]>> {
    const out = await workload();
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v)]));
  },
};

installDenoShim();
const g = globalThis as unknown as { bnlab?: typeof api; bnlabLoadError?: string };
try {
  for (const [file, load] of Object.entries(FILES)) {
    setFile(loading = file);
    await load();
  }
  g.bnlab = api;
} catch (e) {
  g.bnlabLoadError = `while importing ${loading}: ${describe(e)}`;
}
