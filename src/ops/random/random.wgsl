// Random tensors from a counter-based generator: uniform in [low, high) and standard normal.
//
// No generator state lives anywhere: element i's random bits are a pure function of
// (seed, i), so a tensor costs one launch and no upload, any slice can be regenerated, and
// the same seed gives the same bits on every adapter (integer arithmetic is exact).
//
//   bits(i)  = pcg(pcg(pcg(seed) ^ STREAM) + i)            PCG's output permutation, three
//                                                          rounds (as dropout.wgsl)
//   u(i)     = (bits(i) >> 8) * 2^-24                      24 random bits: exactly
//                                                          representable, in [0, 1)
//   uniform  out[i] = low + (high - low) * u(i)
//   normal   Box-Muller on the pair (2k, 2k+1):
//            r = sqrt(-2 ln(1 - u(2k))),  t = 2 pi u(2k+1)
//            out[2k] = r cos t,  out[2k+1] = r sin t
//
// 1 - u is exact (u has 24 bits) and in (0, 1], so ln never sees 0. WGSL lets cos, sin
// and ln (near 1) err by 2^-11 and 2^-21 in absolute terms (llvmpipe's cos does, by
// ~1e-5), which would make small normals differ from adapter to adapter by percents; so
// all three are computed here from + and * (and one division, within 2.5 ulps):
//   cos, sin: the quadrant q and fraction f of 4u are exact, y = min(f, 1 - f) pi/2 is in
//             [0, pi/4], and Taylor polynomials to y^10 give sin y, cos y;
//   ln v:     v = m 2^e with m in [sqrt(1/2), sqrt(2)) (exact bit operations), and
//             ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^9/9), s = (m - 1)/(m + 1), |s| < 0.18.
// The uniforms are bit-identical across adapters; the normals agree to a few float32 ulps
// (sqrt is the adapter's), and `reference.ts` computes the same maths in float64.
//
// Thread-to-data mapping: uniform, one thread per element; normal, one thread per pair.
// Bindings: 0 params (uniform), 1 out. Dispatch: ceil(threads / WG) workgroups split over
// x and y (linear id = x + y * num_workgroups.x).

override WG: u32 = 256u;
override NORMAL: u32 = 0u;     // 0: uniform, 1: standard normal
const STREAM: u32 = 0x9e3779b9u; // keeps these streams apart from dropout's (seed, counter)

struct Params {
  n: u32,
  seed: u32,
  low: f32,
  span: f32,  // high - low
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

/**
 * (cos, sin) of 2 pi u for u in [0, 1) with 24 bits, to float32 precision, from + and *
 * only (see the header).
 */
fn cos_sin_turn(u: f32) -> vec2<f32> {
  let s = 4.0 * u;          // exact
  let q = floor(s);         // quadrant 0..3
  let f = s - q;            // exact, in [0, 1)
  let near = f <= 0.5;
  let y = select(1.0 - f, f, near) * 1.5707963267948966; // in [0, pi/4]
  let y2 = y * y;
  // Taylor to y^9 and y^10: the first omitted terms are below 3e-9 on [0, pi/4].
  let sy = y * (1.0 + y2 * (-1.0 / 6.0 + y2 * (1.0 / 120.0 + y2 * (-1.0 / 5040.0 +
    y2 * (1.0 / 362880.0)))));
  let cy = 1.0 + y2 * (-0.5 + y2 * (1.0 / 24.0 + y2 * (-1.0 / 720.0 + y2 * (1.0 / 40320.0 +
    y2 * (-1.0 / 3628800.0)))));
  // cos and sin of f pi/2: swapped when f > 1/2 (cos x = sin(pi/2 - x)).
  let c = select(sy, cy, near);
  let sn = select(cy, sy, near);
  switch u32(q) {
    case 0u: { return vec2<f32>(c, sn); }
    case 1u: { return vec2<f32>(-sn, c); }
    case 2u: { return vec2<f32>(-c, -sn); }
    default: { return vec2<f32>(sn, -c); }
  }
}

/** ln v for a normal float v > 0, to a few ulps, from + and * and one division. */
fn ln_precise(v: f32) -> f32 {
  let bits = bitcast<u32>(v);
  var e = f32(i32((bits >> 23u) & 0xffu) - 127);
  var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u); // mantissa in [1, 2)
  if (m > 1.4142135) {
    m = m * 0.5;
    e = e + 1.0;
  }
  let s = (m - 1.0) / (m + 1.0);
  let s2 = s * s;
  let atanh = s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))));
  return e * 0.6931471805599453 + 2.0 * atanh;
}

/** 24 random bits of element i as a float in [0, 1). */
fn unit(key: u32, i: u32) -> f32 {
  return f32(pcg(key + i) >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let key = pcg(pcg(p.seed) ^ STREAM);
  if (NORMAL == 0u) {
    if (t >= p.n) { return; }
    out[t] = p.low + p.span * unit(key, t);
    return;
  }
  let i = 2u * t;
  if (i >= p.n) { return; }
  let r = sqrt(-2.0 * ln_precise(1.0 - unit(key, i)));
  let cs = cos_sin_turn(unit(key, i + 1u));
  out[i] = r * cs.x;
  if (i + 1u < p.n) { out[i + 1u] = r * cs.y; }
}
