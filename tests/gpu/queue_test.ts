import { deepEqual, ok, throws } from "node:assert/strict";
/**
 * Batched encoding: a chain of ops submits nothing until a readback, which submits once;
 * the pipeline cache compiles each (source, entry point, overrides) once.
 */
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { flush, grid, launch, queueStats, sync, uniforms } from "../../src/gpu/queue.ts";
import { pipeline, pipelinesCreated } from "../../src/gpu/pipeline.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";

gpuTest("a chain of 50 ops is one submit, made by toArray()", async () => {
  await sync();
  const x = Tensor.from([1, 2, 3, 4, 5, 6, 7], [7]);
  const before = queueStats().submits;
  const y = tidy(() => {
    let t = x;
    for (let i = 0; i < 50; i++) t = i % 2 ? t.mul(1.01) : t.add(0.5);
    return t;
  });
  const pending = queueStats();
  ok(pending.submits === before, `50 ops submitted ${pending.submits - before} times`);
  ok(
    pending.pendingLaunches >= 50,
    `expected >= 50 pending launches, got ${pending.pendingLaunches}`,
  );
  const got = await y.toArray();
  const after = queueStats();
  ok(after.submits === before + 1, `toArray() made ${after.submits - before} submits, not 1`);
  ok(after.pendingLaunches === 0, "nothing left pending after a readback");
  const want = [1, 2, 3, 4, 5, 6, 7].map((v) => {
    for (let i = 0; i < 50; i++) v = i % 2 ? v * 1.01 : v + 0.5;
    return v;
  });
  assertClose(got, want, { atol: 1e-5, rtol: 1e-5 }, "the chain's result");
  x.dispose();
  y.dispose();
});

/**
 * Makes `method` of `proto` run once as `wrap` says (then it is the real one again): a
 * WebGPU call that throws halfway, as a call may (a lost device, an interrupted cell).
 */
function failOnce<T extends object>(
  proto: T,
  method: keyof T & string,
  wrap: (real: (...a: unknown[]) => unknown, self: T, args: unknown[]) => unknown,
): () => void {
  const real = (proto as Record<string, unknown>)[method] as (...a: unknown[]) => unknown;
  (proto as Record<string, unknown>)[method] = function (this: T, ...args: unknown[]) {
    (proto as Record<string, unknown>)[method] = real;
    return wrap(real, this, args);
  };
  return () => (proto as Record<string, unknown>)[method] = real;
}

gpuTest("a submit that throws leaves no finished encoder for the next launch", async () => {
  const x = Tensor.from([1, 2, 3]);
  await sync();
  // finish() ran (it is submit's argument), then submit throws: the batch is lost, but the
  // next launches must go into a fresh encoder, not the finished one.
  const restore = failOnce(GPUQueue.prototype, "submit", () => {
    throw new Error("submit failed (test)");
  });
  try {
    const y = x.add(1);
    throws(() => flush(), /submit failed \(test\)/);
    y.dispose();
  } finally {
    restore();
  }
  deepEqual([...await x.mul(2).toArray()], [2, 4, 6]); // a GPUValidationError if not
  x.dispose();
});

gpuTest("a pass whose end() throws is not ended again, nor encoded into", async () => {
  const x = Tensor.from([1, 2, 3]);
  await sync();
  const y = x.add(1); // opens the batch's pass
  // end() ends the pass, then throws: flush() fails, and the next launch needs a new pass.
  const restore = failOnce(GPUComputePassEncoder.prototype, "end", (real, self, args) => {
    real.apply(self, args);
    throw new Error("end failed (test)");
  });
  try {
    throws(() => flush(), /end failed \(test\)/);
  } finally {
    restore();
  }
  deepEqual([...await y.add(1).toArray()], [3, 4, 5]); // a GPUValidationError if not
  x.dispose();
  y.dispose();
});

gpuTest("flush() with nothing encoded submits nothing", () => {
  flush();
  const before = queueStats().submits;
  flush();
  flush();
  ok(queueStats().submits === before, "empty flushes must not submit");
});

const KERNEL = `
override WG: u32 = 64u;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) { out[gid.x] = f32(WG); }
`;

gpuTest("the pipeline cache compiles once per source and overrides", () => {
  const a = pipeline("test.cache", KERNEL, { WG: 64 });
  const b = pipeline("test.cache", KERNEL, { WG: 64 });
  ok(a === b, "same source and overrides must give the same GPUComputePipeline");
  const c = pipeline("test.cache", KERNEL, { WG: 32 });
  ok(c !== a, "other override values must give another pipeline");
  ok(pipeline("test.cache", KERNEL, { WG: 32 }) === c, "and that one is cached too");
  const d = pipeline("test.cache", KERNEL + "\n// another source\n", { WG: 64 });
  ok(d !== a, "another source must give another pipeline");
});

gpuTest(
  "pipelinesCreated lists each new pipeline once, labelled with entry point and constants",
  () => {
    const before = pipelinesCreated().length;
    pipeline("test.record", KERNEL, { WG: 16 });
    pipeline("test.record", KERNEL, { WG: 16 }); // cached: not created again
    const added = pipelinesCreated().slice(before);
    deepEqual(added.map((p) => [p.label, p.entryPoint, p.constants]), [
      ["test.record: main(WG=16)", "main", { WG: 16 }],
    ]);
    ok(added[0].code === KERNEL, "the record holds the WGSL source");
  },
);

const WRITE_KERNEL = `
struct P { v: f32, i: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() { out[p.i] = p.v; }
`;

gpuTest(
  "a launch binding what an earlier one bound reuses its bind group, with its own params",
  async () => {
    const a = Tensor.zeros([2]);
    const b = Tensor.zeros([2]);
    await sync(); // their fills submitted: the writes below start the uniform arena afresh
    const write = (out: Tensor, v: number, i: number) =>
      launch({
        label: "test.write",
        code: WRITE_KERNEL,
        bindings: [uniforms({ v, i }, "P"), out.buffer],
        workgroups: [1],
      });
    // Two launches in one submit: two uniform slots, two bind groups.
    const start = queueStats().bindGroups;
    write(a, 1, 0);
    write(a, 2, 1);
    assertClose(await a.toArray(), [1, 2], { atol: 0, rtol: 0 }, "first submit");
    const created = queueStats().bindGroups - start;
    ok(created === 2, `the first two launches created ${created} bind groups, not 2`);
    // The same launches after the submit take the same slots: no new bind group, and the
    // kernel sees this submit's params, not the first one's.
    write(a, 3, 0);
    write(a, 4, 1);
    assertClose(await a.toArray(), [3, 4], { atol: 0, rtol: 0 }, "second submit");
    ok(queueStats().bindGroups - start === 2, "the same bindings again created a bind group");
    // Another buffer is another bind group.
    write(b, 5, 0);
    assertClose(await b.toArray(), [5, 0], { atol: 0, rtol: 0 }, "another buffer");
    ok(queueStats().bindGroups - start === 3, "another buffer must get its own bind group");
    a.dispose();
    b.dispose();
  },
);

Deno.test("grid splits large workgroup counts within 65535 per dimension", () => {
  for (const n of [1, 7, 65535, 65536, 1_000_003, 65535 * 65535]) {
    const [x, y] = grid(n);
    ok(x <= 65535 && y <= 65535 && x * y >= n, `grid(${n}) = [${x}, ${y}]`);
    ok(x * (y - 1) < n, `grid(${n}) = [${x}, ${y}] has a wasted row`);
  }
  ok(grid(0).join() === "1,1", "grid(0) dispatches one (idle) workgroup");
});
