// The bandwidth yardstick: out[i] = inp[i], as vec4<f32>.
//
// The simplest kernel that moves a given number of bytes: it reads n4 vec4s and writes
// n4 vec4s, so its GB/s is about the most a memory-bound kernel can reach on the adapter.
// Benchmarks time it beside the kernel under test, moving the same bytes.
//
// One thread per vec4; dispatch ceil(n4 / WG) workgroups, split over x and y (linear id =
// x + y * num_workgroups.x).
// Bindings: 0 params (uniform), 1 inp, 2 out.

override WG: u32 = 256u;

struct Params {
  n4: u32, // vec4s to copy
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n4) { out[i] = inp[i]; }
}
