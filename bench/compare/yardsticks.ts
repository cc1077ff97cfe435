/**
 * What the adapter can do, measured in the same run as the comparison, so that each row is
 * also a fraction of it: the copy kernel's bandwidth (bench/ops/copy.wgsl, vec4 loads and
 * stores, the most a memory-bound kernel can expect), bnlab's best matrix product's
 * arithmetic rate (`linear` at 512x512x512: on llvmpipe its batch kernel, the activations read
 * as uniforms, see src/ops/linear/matmul.wgsl and bench/ops/linear_bench.ts; until
 * 2026-12-07 the `rows` kernel, the weights read as uniforms: 0.84-0.96x its time there),
 * and the price of one host wait on each side.
 *
 * Kernel rates use bench/timing.ts's `msPerCall`: several calls, one wait, minus the cost of
 * a bare wait, so they describe the kernel rather than the wait. Each kernel is validated
 * before it is timed.
 *
 * @module
 */
import { F, gpu, Tensor, tidy } from "../../mod.ts";
import { refLinearForward } from "../../src/ops/linear/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";
import copySrc from "../ops/copy.wgsl" with { type: "text" };

/** The adapter's figures. */
export interface Yardsticks {
  /** GB/s of the vec4 copy (bytes read + written). */
  copy_gbps: number;
  /** Floats copied per call. */
  copy_floats: number;
  /** GFLOP/s of `linear` (forward) at [size, size] x [size, size]^T. */
  matmul_gflops: number;
  /** The matrix size used. */
  matmul_size: number;
  /** ms of one host wait with nothing to do (`gpu.sync()`), median. */
  host_wait_ms: number;
  /** The same for tfjs webgpu (its submit, then the queue wait), once measured. */
  tfjs_host_wait_ms?: number;
}

const COPY_FLOATS = 1 << 22; // 16 MiB each way: far larger than llvmpipe's caches
const WG = 256;
const MATMUL = 512;

/** Median ms of `wait()` with nothing queued. */
export async function hostWaitMs(wait: () => Promise<void>, n = 15): Promise<number> {
  const ts: number[] = [];
  await wait();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await wait();
    ts.push(performance.now() - t0);
  }
  return ts.sort((a, b) => a - b)[n >> 1];
}

/** A copy of `n` floats on bnlab's device: a pipeline of copy.wgsl, dispatched directly. */
async function copyKernel(src: GPUBuffer, dst: GPUBuffer, n: number): Promise<() => void> {
  const device = await gpu.getDevice();
  const n4 = n / 4;
  const pipeline = device.createComputePipeline({
    label: "yardstick copy",
    layout: "auto",
    compute: {
      module: device.createShaderModule({ label: "copy.wgsl", code: copySrc }),
      constants: { WG },
    },
  });
  const params = device.createBuffer({
    label: "yardstick copy params",
    size: 16,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(params, 0, new Uint32Array([n4, 0, 0, 0]));
  const bindGroup = device.createBindGroup({
    label: "yardstick copy",
    layout: pipeline.getBindGroupLayout(0),
    entries: [params, src, dst].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const groups = Math.ceil(n4 / WG);
  const [x, y] = groups <= 65535 ? [groups, 1] : [65535, Math.ceil(groups / 65535)];
  return () => {
    gpu.flush(); // bnlab's encoded work (filling dst) goes first
    const enc = device.createCommandEncoder({ label: "yardstick copy" });
    const pass = enc.beginComputePass({ label: "yardstick copy" });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
    pass.end();
    device.queue.submit([enc.finish()]);
  };
}

/** Measures the copy bandwidth, the matmul rate and the host wait on bnlab's device. */
export async function measureYardsticks(): Promise<Yardsticks> {
  const host_wait_ms = await hostWaitMs(() => gpu.sync());

  const data = Float32Array.from({ length: COPY_FLOATS }, (_, i) => (i % 1009) - 504);
  const src = Tensor.from(data), dst = Tensor.zeros([COPY_FLOATS]);
  const copy = await copyKernel(src.buffer, dst.buffer, COPY_FLOATS);
  copy();
  assertClose(await dst.toArray(), data, { atol: 0, rtol: 0 }, "yardstick copy");
  const copyMs = await msPerCall(copy, { reps: 20, trials: 3 });
  src.dispose();
  dst.dispose();

  const m = MATMUL;
  const a = Float32Array.from({ length: m * m }, (_, i) => ((i * 37) % 101) / 101 - 0.5);
  const w = Float32Array.from({ length: m * m }, (_, i) => ((i * 53) % 97) / 97 - 0.5);
  const x = Tensor.from(a, [m, m]), wt = Tensor.from(w, [m, m]);
  const y = F.linear(x, wt, null);
  assertClose(await y.toArray(), refLinearForward(a, w, null, m, m, m), { atol: 1e-3, rtol: 1e-4 });
  y.dispose();
  const mmMs = await msPerCall(() => tidy(() => void F.linear(x, wt, null)), {
    reps: 5,
    trials: 3,
  });
  x.dispose();
  wt.dispose();

  return {
    copy_gbps: (8 * COPY_FLOATS) / copyMs / 1e6,
    copy_floats: COPY_FLOATS,
    matmul_gflops: (2 * m ** 3) / mmMs / 1e6,
    matmul_size: m,
    host_wait_ms,
  };
}
