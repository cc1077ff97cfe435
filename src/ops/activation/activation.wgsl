// Fused activations, forward and backward, elementwise over flat f32 arrays:
//
//   sigmoid_forward   out[i]  = 1 / (1 + exp(-inp[i]))
//   sigmoid_backward  dinp[i] = dout[i] * out[i] * (1 - out[i])   (reads the saved output)
//   relu_forward      out[i]  = max(inp[i], 0)
//   relu_backward     dinp[i] = dout[i] * (inp[i] > 0)            (reads the saved input)
//
// Thread-to-data mapping: one thread per vec4 (elements 4t .. 4t+3); ceil(n / 4) threads.
// Pooled buffers are padded to a multiple of 256 bytes, so the last vec4 is always in
// bounds; its elements past n are padding and their values do not matter.
//
// Bindings: 0 params (uniform: n4 = ceil(n / 4)); forward: 1 inp, 2 out; backward:
// 1 saved (out for sigmoid, inp for relu), 2 dout, 3 dinp.
// Dispatch: ceil(n4 / WG) workgroups split over x and y (linear id = x + y * nwg.x).

override WG: u32 = 256u;

struct Params {
  n4: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Forward entry points use inp and out; backward ones saved, dout and dinp. (WGSL allows two
// variables on one binding as long as no entry point uses both.)
@group(0) @binding(1) var<storage, read> inp: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> saved: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dinp: array<vec4<f32>>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn sigmoid_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.n4) { return; }
  out[i] = 1.0 / (1.0 + exp(-inp[i]));
}

@compute @workgroup_size(WG)
fn sigmoid_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.n4) { return; }
  let s = saved[i]; // the forward's output
  dinp[i] = dout[i] * s * (1.0 - s);
}

@compute @workgroup_size(WG)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.n4) { return; }
  out[i] = max(inp[i], vec4<f32>(0.0));
}

@compute @workgroup_size(WG)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.n4) { return; }
  dinp[i] = select(vec4<f32>(0.0), dout[i], saved[i] > vec4<f32>(0.0)); // saved = forward's input
}
