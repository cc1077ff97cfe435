/**
 * The adapter profile: llvmpipe is recognised as the measured family, every other adapter
 * (a GPU, Chromium's SwiftShader) gets plain schedules, and the device's profile is the one
 * its adapter reports.
 */
import { deepEqual, equal } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { choose, profileOf, type Schedule } from "../../src/gpu/profile.ts";
import { adapterProfile } from "../../src/gpu/device.ts";

const PLAIN: Schedule = { name: "plain", adapters: [], measured: "" };
const TUNED: Schedule = { name: "llvmpipe", adapters: ["llvmpipe"], measured: "by hand" };

Deno.test("profileOf: what each adapter family looks like", () => {
  // as Deno's wgpu reports Mesa's lavapipe
  const lava = profileOf(
    {
      description: "llvmpipe (LLVM 15.0.6, 256 bits)",
      vendor: "65541",
      architecture: "",
      device: "0",
      isFallbackAdapter: true,
      subgroupMinSize: 8,
      subgroupMaxSize: 8,
    },
    ["timestamp-query"],
    { maxComputeWorkgroupSizeX: 1024 },
  );
  equal(lava.measured, "llvmpipe");
  equal(lava.kind, "cpu");
  deepEqual(lava.subgroupSizes, { min: 8, max: 8 });
  deepEqual(lava.features, ["timestamp-query"]);
  equal(choose(lava, PLAIN, TUNED), TUNED);
  // as Chromium reports SwiftShader: no description, not flagged as a fallback
  const swift = profileOf({ vendor: "google", architecture: "swiftshader" }, [], {});
  equal(swift.measured, null);
  equal(swift.kind, "cpu");
  equal(swift.description, "google swiftshader");
  equal(choose(swift, PLAIN, TUNED), PLAIN);
  // a real GPU nobody has measured
  const gpu = profileOf({ description: "NVIDIA H100 80GB HBM3", vendor: "nvidia" }, [], {});
  equal(gpu.kind, "gpu");
  equal(gpu.measured, null);
  equal(gpu.subgroupSizes, null);
  equal(choose(gpu, PLAIN, TUNED), PLAIN);
});

gpuTest("the device's profile is its adapter's", async () => {
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  const p = adapterProfile();
  const info = adapter!.info;
  equal(
    p.description,
    info.description || info.device || [info.vendor, info.architecture].filter(Boolean).join(" ") ||
      "unknown adapter",
  );
  equal(p.measured === "llvmpipe", /llvmpipe/.test(p.description));
  equal(p.isFallbackAdapter, info.isFallbackAdapter ?? false);
  for (const [k, v] of Object.entries(p.limits)) {
    equal(v, adapter!.limits[k as keyof GPUSupportedLimits], `limit ${k}`);
  }
});
