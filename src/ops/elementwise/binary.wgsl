// Elementwise binary op with NumPy/PyTorch broadcasting: out[i] = a[ia] OP b[ib].
//
// The output index i is linear over the (contiguous) output shape; ia and ib come from the
// output's multi-index dotted with the inputs' broadcast strides (stride 0 on a broadcast
// dimension). The host first merges adjacent dimensions that both inputs step through the
// same way, so [N, C, H, W] * [1, C, 1, 1] arrives as [N, C, H*W] with b's strides
// [0, 1, 0], and a same-shape op as one dimension (BROADCAST = 0, no index arithmetic).
//
// Thread-to-data mapping:
//   BROADCAST = 0: one thread per element.
//   BROADCAST = 1: one thread per run of ROW_STEP consecutive elements of a row of the
//     innermost dimension (the host picks ROW_STEP, up to 16, dividing the row length).
//     The thread finds the offsets of its first element by dividing by each dimension's
//     size, once, then steps through the run by the inputs' innermost strides (1, or 0 for
//     a broadcast input): llvmpipe's integer divisions are scalar, and paying them once
//     per run instead of per element makes per-channel broadcasting cost about what a
//     same-shape op costs.
//
// Bindings: 0 params (uniform), 1 a, 2 b, 3 out (all f32, contiguous).
// Dispatch: ceil(n / ROW_STEP / WG) workgroups (ROW_STEP = 1 when BROADCAST = 0), split over
// x and y (linear id = x + y * num_workgroups.x).

override OP: u32 = 0u;        // 0 add, 1 sub, 2 mul, 3 div, 4 pow, 5 eq (1.0 or 0.0)
override BROADCAST: u32 = 1u; // 0: a, b and out share one shape
override ROW_STEP: u32 = 1u;  // BROADCAST = 1: consecutive elements per thread along a row
override WG: u32 = 256u;

struct Params {
  n: u32,                    // output elements
  rank: u32,
  shape: array<vec4<u32>, 2>, // output shape, dims 0..7 (unused dims = 1)
  sa: array<vec4<u32>, 2>,    // a's broadcast strides
  sb: array<vec4<u32>, 2>,    // b's broadcast strides
}

// NaN's bits, read at run time: a constant expression that yields NaN (or an infinity) is a
// shader-creation error in WGSL (Tint refuses `bitcast<f32>(0x7fc00000u)`; naga allows it).
var<private> NAN_BITS: u32 = 0x7fc00000u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn apply(x: f32, y: f32) -> f32 {
  switch OP {
    case 0u: { return x + y; }
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 5u: { return select(0.0, 1.0, x == y); }
    default: {
      // pow with PyTorch's conventions for negative bases and integer exponents
      if (y == 0.0) { return 1.0; }
      if (x >= 0.0) { return pow(x, y); }
      let r = pow(-x, y);
      if (fract(y) != 0.0) { return bitcast<f32>(NAN_BITS); }
      if (fract(y * 0.5) != 0.0) { return -r; }
      return r;
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (BROADCAST == 0u) {
    if (t >= p.n) { return; }
    out[t] = apply(a[t], b[t]);
    return;
  }
  let i = t * ROW_STEP;
  if (i >= p.n) { return; }
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let size = p.shape[d / 4][d % 4];
    let idx = rem % size;
    rem = rem / size;
    ia += idx * p.sa[d / 4][d % 4];
    ib += idx * p.sb[d / 4][d % 4];
  }
  let last = p.rank - 1u;
  let da = p.sa[last / 4u][last % 4u];
  let db = p.sb[last / 4u][last % 4u];
  for (var k = 0u; k < ROW_STEP; k++) {
    out[i + k] = apply(a[ia + k * da], b[ib + k * db]);
  }
}
