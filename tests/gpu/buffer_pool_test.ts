import { ok } from "node:assert/strict";
/** The buffer pool: size classes, reuse of released buffers, and the counters. */
import { gpuTest } from "../gpu_test.ts";

import {
  allocBuffer,
  memoryStats,
  releaseBuffer,
  sizeClass,
  trimPool,
  uploadBuffer,
} from "../../src/gpu/buffer_pool.ts";
import { readBuffer } from "../../src/gpu/queue.ts";

Deno.test("size classes: at least the request, 256 B minimum, at most 25% waste above 1 KiB", () => {
  for (const bytes of [1, 4, 256, 257, 1000, 1024, 1025, 4096, 12345, 1_000_000, 4_000_000]) {
    const c = sizeClass(bytes);
    ok(c >= bytes && c >= 256 && c % 4 === 0, `sizeClass(${bytes}) = ${c}`);
    if (bytes > 1024) ok(c <= bytes * 1.25, `sizeClass(${bytes}) = ${c} wastes too much`);
    ok(sizeClass(c) === c, `a size class maps to itself: ${c}`);
  }
});

gpuTest("a released buffer is reused for the next request of its class", () => {
  const start = memoryStats();
  const a = allocBuffer(1000);
  const mid = memoryStats();
  ok(mid.liveBytes === start.liveBytes + a.size, "live bytes count the new buffer");
  releaseBuffer(a);
  ok(memoryStats().liveBytes === start.liveBytes, "released bytes are no longer live");
  const b = allocBuffer(990); // same size class
  ok(b === a, "the pool hands the released buffer out again");
  ok(memoryStats().buffers === mid.buffers, "reuse creates no buffer");
  releaseBuffer(b);
});

gpuTest("uploadBuffer holds the data; trimPool destroys pooled buffers", async () => {
  const data = Float32Array.from({ length: 300 }, (_, i) => i * 0.5);
  const buf = uploadBuffer(data);
  const back = new Float32Array(await readBuffer(buf, data.byteLength));
  ok(back.every((v, i) => v === data[i]), "uploaded data reads back unchanged");
  releaseBuffer(buf);
  ok(memoryStats().pooledBytes >= buf.size, "the released upload is pooled");
  trimPool();
  const s = memoryStats();
  ok(s.pooledBytes === 0, `trimPool leaves ${s.pooledBytes} pooled bytes`);
});
