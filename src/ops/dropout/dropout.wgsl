// Dropout with a counter-based random number generator, forward and backward:
//
//   forward   mask[i] = (hash(seed, counter, i) >= threshold) ? scale : 0,   scale = 1 / (1 - p)
//             out[i]  = inp[i] * mask[i]
//   backward  dinp[i] = dout[i] * mask[i]
//
// The random bits are a pure function of (seed, counter, i): no generator state lives on the
// GPU and nothing is uploaded per step; the host bumps `counter` in the uniform at every call.
// An element is kept when its 32 random bits are >= threshold = round(p * 2^32), i.e. with
// probability 1 - p. The forward saves the scaled mask for the backward.
//
// Hash: three rounds of the PCG output permutation (O'Neill 2014; "Hash functions for GPU
// rendering", Jarzynski & Olano 2020) over the element index mixed with seed and counter.
//
// Thread-to-data mapping: one thread per element.
// Bindings: 0 params (uniform); forward: 1 inp, 2 out, 3 mask; backward: 1 mask, 2 dout,
// 3 dinp. Dispatch: ceil(n / WG) workgroups split over x and y (linear id = x + y * nwg.x).

override WG: u32 = 256u;

struct Params {
  n: u32,
  seed: u32,
  counter: u32,
  threshold: u32, // keep when the random bits are >= threshold
  scale: f32,     // 1 / (1 - p), or 0 when p = 1
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> mask: array<f32>;
@group(0) @binding(1) var<storage, read> saved_mask: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let bits = pcg(pcg(pcg(p.seed) ^ p.counter) + i);
  let m = select(0.0, p.scale, bits >= p.threshold);
  mask[i] = m;
  out[i] = inp[i] * m;
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  dinp[i] = dout[i] * saved_mask[i];
}
