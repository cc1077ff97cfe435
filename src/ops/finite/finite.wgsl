// Whether a tensor holds a value that is not finite (NaN or an infinity), for the anomaly
// mode (src/tensor/anomaly.ts): every op's output is checked as it is made, and the earliest
// op (the smallest sequence number `seq`) with such a value is kept in `first`, which the
// host reads with its next read of anything.
//
//   first[0] = min(first[0], seq)   if some inp[i] is NaN or +-inf   (first[0] starts at 2^32-1)
//
// The test is on the bits (exponent all ones), not `x != x`: a compiler may assume floats
// are finite and fold comparisons away.
//
// Thread-to-data mapping: one thread per element, over a 2-D grid of workgroups (a long
// tensor needs more than 65535 workgroups in x); threads past n return.
// Bindings: 0 params (uniform), 1 inp [n] (f32 read as its bits), 2 first [1] (atomic).
// Dispatch: ceil(n / 256) workgroups, split over x and y.

struct Params {
  n: u32,   // elements
  seq: u32, // the op's sequence number
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(2) var<storage, read_write> first: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  if ((inp[i] & 0x7f800000u) == 0x7f800000u) { atomicMin(&first[0], p.seq); }
}
