/**
 * The bind-group cache: a hit returns the same bind group, and past its limit the least
 * recently used entry goes, not the oldest.
 */
import { ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { BIND_GROUP_CACHE, bindGroup, bindGroupsCreated } from "../../src/gpu/bind_groups.ts";
import { pipeline } from "../../src/gpu/pipeline.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const KERNEL = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() { out[0] = 1.0; }
`;

gpuTest("a bind group is cached per pipeline: another pipeline's is never reused", () => {
  const a = Tensor.zeros([1]);
  const bound = [{ buffer: a.buffer }];
  const one = bindGroup("test.bind_groups", pipeline("test.bind_groups", KERNEL), bound);
  const other = pipeline("test.bind_groups", KERNEL + "\n// another pipeline\n");
  ok(bindGroup("test.bind_groups", other, bound) !== one, "two pipelines shared a bind group");
  a.dispose();
});

gpuTest("the bind-group cache keeps the most recently used bind groups", () => {
  const limit = BIND_GROUP_CACHE.limit;
  BIND_GROUP_CACHE.limit = 2;
  const [a, b, c] = [Tensor.zeros([1]), Tensor.zeros([1]), Tensor.zeros([1])];
  try {
    const pipe = pipeline("test.bind_groups", KERNEL);
    const get = (t: Tensor) => bindGroup("test.bind_groups", pipe, [{ buffer: t.buffer }]);
    const start = bindGroupsCreated();
    const ga = get(a);
    const gb = get(b);
    ok(get(a) === ga, "the same pipeline and buffer must give the same bind group");
    ok(bindGroupsCreated() - start === 2, "a hit must not create a bind group");
    get(c); // the cache is full: b, the least recently used, goes
    ok(get(a) === ga, "a, used after b, must have outlived c's insertion");
    ok(get(b) !== gb, "b, the least recently used, must have been evicted");
    ok(bindGroupsCreated() - start === 4, `created ${bindGroupsCreated() - start}, not 4`);
  } finally {
    BIND_GROUP_CACHE.limit = limit;
    for (const t of [a, b, c]) t.dispose();
  }
});
