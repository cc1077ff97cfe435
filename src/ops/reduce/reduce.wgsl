// Sum, max or min over any set of dimensions: out[o] = scale * OP_r inp[base(o) + off(r)]
// (OP = 0 sum, 1 max, 2 min; max and min propagate NaN, as PyTorch's do).
//
// The input's dimensions are split into kept ones (which index the output o) and reduced
// ones (enumerated by r in [0, R)). One workgroup per output element: each of its WG
// threads sums a strided slice r = t, t + WG, ... in registers, then the workgroup adds
// the WG partial sums with a tree in workgroup memory. Float32 pairwise-style summation:
// error grows like log(R), not R.
//
// A long reduction is split: workgroup w reduces the slice r in [s*chunk, (s+1)*chunk) of
// output o = w / splits, s = w % splits, and writes out[w]; the host then reduces the
// [n_out, splits] partials again. This keeps every thread's loop under llvmpipe's silent
// cap of 65535 iterations (past it the loop just stops and the sum is wrong), and gives
// a few long reductions enough workgroups to fill the device.
//
// The innermost reduced dimension (the host merges contiguous ones: H*W of a per-channel
// mean) is walked row by row: the offset of a row costs the integer divisions, its
// elements cost an add each. Rows shorter than WG would idle most threads: those take the
// general path, one index decomposition per element.
//
// Bindings: 0 params (uniform), 1 inp, 2 out. Dispatch: n_out * splits workgroups,
// split over x and y (linear id = x + y * num_workgroups.x).

override WG: u32 = 64u;
override OP: u32 = 0u;

struct Params {
  n_out: u32,
  r: u32,                         // elements reduced per output
  kept_rank: u32,
  red_rank: u32,
  scale: f32,
  splits: u32,                    // slices per output (1 unless r is very long)
  chunk: u32,                     // elements per slice
  kept_shape: array<vec4<u32>, 2>,
  kept_stride: array<vec4<u32>, 2>, // input strides of the kept dims
  red_shape: array<vec4<u32>, 2>,
  red_stride: array<vec4<u32>, 2>,  // input strides of the reduced dims
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// NaN's and the infinities' bits, read at run time: a constant expression that yields NaN or
// an infinity is a shader-creation error in WGSL (Tint refuses `bitcast<f32>(0x7fc00000u)`;
// naga allows it).
var<private> NAN_BITS: u32 = 0x7fc00000u;
var<private> NEG_INF_BITS: u32 = 0xff800000u;
var<private> POS_INF_BITS: u32 = 0x7f800000u;

/** The identity of OP: 0 for a sum, -inf for max, +inf for min. */
fn identity() -> f32 {
  switch OP {
    case 0u: { return 0.0; }
    case 1u: { return bitcast<f32>(NEG_INF_BITS); }
    default: { return bitcast<f32>(POS_INF_BITS); }
  }
}

/** Whether x is NaN, from its bits: `x != x` may be folded to false by the compiler. */
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

/** a OP b, with NaN winning for max and min. */
fn combine(a: f32, b: f32) -> f32 {
  if (OP == 0u) { return a + b; }
  if (is_nan(a) || is_nan(b)) { return bitcast<f32>(NAN_BITS); }
  if (OP == 1u) { return max(a, b); }
  return min(a, b);
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.n_out * p.splits) { return; } // uniform per workgroup: safe before the barriers
  let o = w / p.splits;
  let r0 = (w % p.splits) * p.chunk;
  let r1 = min(p.r, r0 + p.chunk);
  var rem = o;
  var base = 0u;
  for (var d = i32(p.kept_rank) - 1; d >= 0; d--) {
    let size = p.kept_shape[d / 4][d % 4];
    base += (rem % size) * p.kept_stride[d / 4][d % 4];
    rem = rem / size;
  }
  var acc = identity();
  let last = i32(p.red_rank) - 1;
  let inner = p.red_shape[last / 4][last % 4];
  if (inner >= WG) {
    let step = p.red_stride[last / 4][last % 4];
    var row = r0 / inner;
    var i0 = r0 % inner;
    var pos = r0;
    while (pos < r1) {
      // The offset of this row of the innermost dimension: the outer reduced indices.
      var rr = row;
      var off = base;
      for (var d = last - 1; d >= 0; d--) {
        let size = p.red_shape[d / 4][d % 4];
        off += (rr % size) * p.red_stride[d / 4][d % 4];
        rr = rr / size;
      }
      let i1 = min(inner, i0 + (r1 - pos));
      for (var i = i0 + t; i < i1; i += WG) {
        acc = combine(acc, inp[off + i * step]);
      }
      pos += i1 - i0;
      i0 = 0u;
      row += 1u;
    }
  } else {
    for (var r = r0 + t; r < r1; r += WG) {
      var rr = r;
      var off = base;
      for (var d = last; d >= 0; d--) {
        let size = p.red_shape[d / 4][d % 4];
        off += (rr % size) * p.red_stride[d / 4][d % 4];
        rr = rr / size;
      }
      acc = combine(acc, inp[off]);
    }
  }
  partial[t] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { partial[t] = combine(partial[t], partial[t + s]); }
    workgroupBarrier();
  }
  if (t == 0u) {
    if (OP == 0u) { out[w] = partial[0] * p.scale; } else { out[w] = partial[0]; }
  }
}
