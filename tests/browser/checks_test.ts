// The browser suite's own checks, in Deno: the entry-point parser that the coverage check
// relies on, and the workload comparison that decides "the same numbers".
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { computeEntryPoints, coverageGaps, requiredVariants, scheduleOf } from "./coverage.ts";
import { compareWorkloads } from "./workload.ts";

const root = new URL("../../", import.meta.url);

Deno.test("computeEntryPoints lists @compute functions in order, not commented ones", () => {
  const wgsl = `
// @compute @workgroup_size(1) fn commented_out() {}
/* @compute fn also_not() {} */
@compute @workgroup_size(64)
fn first(@builtin(global_invocation_id) gid: vec3<u32>) {}
fn helper() {}
@compute
@workgroup_size(WG, 1, 1) fn second() {}`;
  deepEqual(computeEntryPoints(wgsl), ["first", "second"]);
  const bn = Deno.readTextFileSync(new URL("src/ops/batch_norm/batch_norm.wgsl", root));
  deepEqual(computeEntryPoints(bn), [
    "unit_stats",
    "stats_finalize",
    "count_batch",
    "eval_stats",
    "normalize",
    "grad_partial",
    "grad_finalize",
    "grad_inp",
    "forward_fused",
    "backward_fused",
    "backward_pooled",
  ]);
});

Deno.test("coverageGaps names each entry point never created and each variant never marked", () => {
  const sources = { "a.wgsl": "@compute @workgroup_size(1) fn f() {}\n@compute fn g() {}" };
  const gaps = coverageGaps(sources, new Set(["a.wgsl: f"]), new Set(["x"]), ["x", "y"]);
  deepEqual(gaps, { entryPoints: ["a.wgsl: g"], variants: ["y"] });
  deepEqual(coverageGaps(sources, new Set(["a.wgsl: f", "a.wgsl: g"]), new Set(), []), {
    entryPoints: [],
    variants: [],
  });
});

Deno.test("every op's schedules are required in the browser, read off the launch labels", () => {
  const required = requiredVariants();
  for (const v of ["batch_norm@plain", "batch_norm@llvmpipe", "linear@plain", "pool@llvmpipe"]) {
    ok(required.includes(v), `${v} is not required: ${required}`);
  }
  equal(scheduleOf("batch_norm.normalize@plain: normalize(ACT=0, WG=64)"), "batch_norm@plain");
  equal(scheduleOf("conv2d.pad_rows@llvmpipe: pad_rows(WG=64)"), "conv2d@llvmpipe");
  equal(scheduleOf("unary.mul: main(BROADCAST=0, OP=2, WG=256)"), null);
});

Deno.test("compareWorkloads: agreement, a perturbed entry, a missing array", () => {
  const a = { w: Float32Array.from([1, -0.5, 0.25]), loss: [2.3] };
  const same = compareWorkloads(a, { w: Float32Array.from(a.w), loss: [2.3] });
  deepEqual(same.errors, []);
  equal(same.values, 4);
  const nudged = Float32Array.from(a.w);
  nudged[2] += 2e-4; // 2e-4 of the array's largest magnitude
  const c = compareWorkloads(a, { w: nudged, loss: [2.3] });
  equal(c.errors.length, 1);
  match(c.errors[0], /^w: 1 of 3 values differ by more than 0.0001 relative; worst \[2\]/);
  equal(c.worst?.name, "w");
  ok(Math.abs(c.worst!.rel - 2e-4) < 1e-6, `${c.worst!.rel}`);
  // Within 1e-4 of the array's largest (the default floor) but not of the entry itself:
  nudged[2] = a.w[2] + 5e-5;
  deepEqual(compareWorkloads(a, { w: nudged, loss: [2.3] }).errors, []);
  equal(compareWorkloads(a, { w: nudged, loss: [2.3] }, { floor: 0 }).errors.length, 1);
  deepEqual(compareWorkloads(a, { w: a.w }).errors, ["loss: only in the first run"]);
  deepEqual(compareWorkloads(a, { w: a.w.slice(1), loss: [2.3] }).errors, [
    "w: 3 values against 2",
  ]);
  equal(compareWorkloads({ x: [NaN] }, { x: [NaN] }).errors.length, 1, "NaN never agrees");
});
