// Elementwise unary op, optionally with a scalar operand c: out[i] = OP(x[ix], c).
//
// One thread per output element. The input may be read through broadcast strides
// (stride 0 on broadcast dimensions): with OP = 0 (copy) this is `expand`. When the input
// is contiguous with the output's shape (BROADCAST = 0) the index arithmetic is skipped.
// OP = 10 (fill) ignores the input and writes c.
//
// Bindings: 0 params (uniform), 1 x, 2 out (f32, contiguous).
// Dispatch: ceil(n / WG) workgroups, split over x and y (linear id = x + y * num_workgroups.x).

override OP: u32 = 0u;
override BROADCAST: u32 = 0u;
override WG: u32 = 256u;

struct Params {
  n: u32,
  rank: u32,
  c: f32,                     // scalar operand
  shape: array<vec4<u32>, 2>, // output shape
  sx: array<vec4<u32>, 2>,    // input's broadcast strides
}

// NaN's bits, read at run time: a constant expression that yields NaN (or an infinity) is a
// shader-creation error in WGSL (Tint refuses `bitcast<f32>(0x7fc00000u)`; naga allows it).
var<private> NAN_BITS: u32 = 0x7fc00000u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn apply(v: f32, c: f32) -> f32 {
  switch OP {
    case 0u: { return v; }                                // copy
    case 1u: { return v + c; }                            // add scalar
    case 2u: { return v * c; }                            // mul scalar
    case 3u: {                                            // pow scalar (PyTorch conventions)
      if (c == 0.0) { return 1.0; }
      if (c == 2.0) { return v * v; }
      if (v >= 0.0) { return pow(v, c); }
      if (fract(c) != 0.0) { return bitcast<f32>(NAN_BITS); }
      let r = pow(-v, c);
      if (fract(c * 0.5) != 0.0) { return -r; }
      return r;
    }
    case 4u: { return v * v; }                            // square
    case 5u: { return sqrt(v); }                          // sqrt
    case 6u: { return exp(v); }                           // exp
    case 7u: { return log(v); }                           // log
    case 8u: { return abs(v); }                           // abs
    case 9u: { return sign(v); }                          // sign (abs's derivative; 0 at 0)
    default: { return c; }                                // fill
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  if (OP == 10u) {
    out[i] = p.c;
    return;
  }
  if (BROADCAST == 0u) {
    out[i] = apply(x[i], p.c);
    return;
  }
  var rem = i;
  var ix = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let size = p.shape[d / 4][d % 4];
    ix += (rem % size) * p.sx[d / 4][d % 4];
    rem = rem / size;
  }
  out[i] = apply(x[ix], p.c);
}
