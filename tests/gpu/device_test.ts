import { ok, rejects } from "node:assert/strict";
/**
 * The device: the adapter is named, and WebGPU validation errors (which Deno otherwise
 * drops silently, leaving wrong data) are thrown by the next host wait.
 */
import { gpuTest } from "../gpu_test.ts";

import { adapterInfo, getDevice, GPUValidationError } from "../../src/gpu/device.ts";
import { launch, sync, uniforms } from "../../src/gpu/queue.ts";
import { allocBuffer, releaseBuffer } from "../../src/gpu/buffer_pool.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

gpuTest("adapterInfo names the adapter", async () => {
  const info = await adapterInfo();
  ok(
    typeof info.description === "string" && info.description.length > 0 &&
      info.description !== "unknown adapter",
    `adapter description: ${JSON.stringify(info.description)}`,
  );
  ok(typeof info.isFallbackAdapter === "boolean", "isFallbackAdapter is a boolean");
  ok(Array.isArray(info.features), "features is a list");
  const device = await getDevice();
  for (const f of info.features) {
    ok(
      device.features.has(f as GPUFeatureName),
      `the device should have been created with ${f}`,
    );
  }
  console.log(`adapter: ${info.description} (${info.vendor}, fallback ${info.isFallbackAdapter})`);
});

// Reads a fixed-size array of 1024 vec4s (16 KiB): any smaller binding is invalid.
const NEEDS_16K = `
@group(0) @binding(0) var<storage, read> inp: array<vec4<f32>, 1024>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() { out[0] = inp[1023].x; }
`;

gpuTest("a binding that is too small is reported by sync()", async () => {
  const small = allocBuffer(256, "too small");
  const out = allocBuffer(256, "out");
  launch({ label: "test.too_small", code: NEEDS_16K, bindings: [small, out], workgroups: [1] });
  await rejects(
    () => sync(),
    (e: Error) => e instanceof GPUValidationError && e.message.includes("test.too_small"),
    "sync() rejects with a GPUValidationError naming the kernel",
  );
  releaseBuffer(small);
  releaseBuffer(out);
});

// Reads inp and writes out; binding one buffer to both is a read/write hazard.
const COPY = `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < p.n) { out[gid.x] = inp[gid.x] + 1.0; }
}
`;

gpuTest("one buffer bound as read and read_write is reported by toArray()", async () => {
  const x = Tensor.from([1, 2, 3]);
  launch({
    label: "test.aliased",
    code: COPY,
    bindings: [uniforms({ n: 3 }, "P"), x.buffer, x.buffer],
    workgroups: [1],
  });
  await rejects(() => x.toArray(), GPUValidationError);
  // The errors were consumed: the next host wait succeeds, and valid work runs again.
  const y = Tensor.empty([3]);
  launch({
    label: "test.copy",
    code: COPY,
    bindings: [uniforms({ n: 3 }, "P"), x.buffer, y.buffer],
    workgroups: [1],
  });
  const got = Array.from(await y.toArray());
  ok(got.join() === "2,3,4", `valid kernel after an error: ${got}`);
  x.dispose();
  y.dispose();
});

gpuTest("a WGSL compile error is reported by sync()", async () => {
  const out = allocBuffer(256, "out");
  launch({
    label: "test.bad_wgsl",
    code: "@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n" +
      "@compute @workgroup_size(1) fn main() { out[0] = undefined_name; }",
    bindings: [out],
    workgroups: [1],
  });
  await rejects(
    () => sync(),
    (e: Error) => e instanceof GPUValidationError && e.message.includes("test.bad_wgsl"),
  );
  releaseBuffer(out);
});
