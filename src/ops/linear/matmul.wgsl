// Linear layer as three register-blocked matrix products, forward and backward:
//
//   forward          out[n, o]     = sum_i inp[n, i] * weight[o, i] + bias[o]    out  = inp @ weight^T + bias
//   backward_inp     dinp[n, i]    = sum_o dout[n, o] * weight[o, i]             dinp = dout @ weight
//   backward_weight  dweight[o, i] = sum_n dout[n, o] * inp[n, i]                dweight = dout^T @ inp
//                    dbias[o]      = sum_n dout[n, o]                            (same pass, free)
//
// Each is C[M, P] = sum_k A(m, k) * B(k, p) over row-major buffers, differing only in which
// index of A and B is contiguous in memory:
//
//   entry point       A (M x K)                  B (K x P)                    C
//   forward           inp   [N, I]: A(m,k)=a[m*K+k]   weight [O, I]: B(k,p)=b[p*K+k]   out [N, O]
//   backward_inp      dout  [N, O]: A(m,k)=a[m*K+k]   weight [O, I]: B(k,p)=b[k*P+p]   dinp [N, I]
//   backward_weight   dout  [N, O]: A(m,k)=a[k*M+m]   inp    [N, I]: B(k,p)=b[k*P+p]   dweight [O, I]
//
// Thread-to-data mapping: each thread owns a 4x4 tile of C (rows m0..m0+3, columns
// p0..p0+3) held in four vec4 registers, and walks k in steps of 4: it loads a 4x4 block of
// A and a 4x4 block of B as four vec4 loads each (along whichever index is contiguous),
// transposes them in registers where needed, and does 64 multiply-adds. No workgroup memory
// and no barriers: on software rasterisers (llvmpipe) barriers are expensive and vec4 loads
// are ~3x faster than scalar ones; on real GPUs neighbouring threads read neighbouring
// vec4s, which the cache serves. A workgroup is WG_P x WG_M threads covering a
// (4 WG_M) x (4 WG_P) block of C; local x runs along p (the contiguous dimension of C).
//
// Bounds: indices past M or P are clamped (the loads stay in bounds and the results are not
// stored); indices past K are zeroed, so any M, K, P >= 1 is exact. ALIGN_A (ALIGN_B) = 1
// promises that A's (B's) contiguous dimension is a multiple of 4, enabling vec4 loads;
// otherwise the same tiles are gathered with scalar loads.
//
// Bindings: 0 params (uniform: M, K, P), 1 a, 2 b, 3 c (all f32, bound as vec4 arrays),
// 4 bias (forward, read when HAS_BIAS = 1) or dbias (backward_weight, written).
// Dispatch: [ceil(P / (4 WG_P)), ceil(M / (4 WG_M))].
// Gradients overwrite (dinp, dweight, dbias are fresh tensors); the autograd tape sums them.

override WG_M: u32 = 8u;
override WG_P: u32 = 8u;
override ALIGN_A: bool = true;
override ALIGN_B: bool = true;
override HAS_BIAS: bool = true;

struct Params {
  m: u32,
  k: u32,
  p: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> sz: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> vec: array<f32>;

fn a_at(i: u32) -> f32 { return a[i >> 2u][i & 3u]; }
fn b_at(i: u32) -> f32 { return b[i >> 2u][i & 3u]; }

// Four consecutive floats from element `i` of a (or b) row that holds `len` valid elements
// starting at element `row_start`; elements at or past `len` read as 0. With `aligned`,
// `row_start` and `i` are multiples of 4 and one vec4 load suffices (`len` is too).
fn load_a(row_start: u32, i: u32, len: u32, aligned: bool) -> vec4<f32> {
  if (aligned) { return a[(row_start + i) >> 2u]; }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (i + j < len) { v[j] = a_at(row_start + i + j); }
  }
  return v;
}

fn load_b(row_start: u32, i: u32, len: u32, aligned: bool) -> vec4<f32> {
  if (aligned) { return b[(row_start + i) >> 2u]; }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (i + j < len) { v[j] = b_at(row_start + i + j); }
  }
  return v;
}

fn transpose4(x: array<vec4<f32>, 4>) -> array<vec4<f32>, 4> {
  return array<vec4<f32>, 4>(
    vec4<f32>(x[0].x, x[1].x, x[2].x, x[3].x),
    vec4<f32>(x[0].y, x[1].y, x[2].y, x[3].y),
    vec4<f32>(x[0].z, x[1].z, x[2].z, x[3].z),
    vec4<f32>(x[0].w, x[1].w, x[2].w, x[3].w),
  );
}

// The thread's tile of C. trans_a: A is stored k-major (A(m,k) = a[k*M+m]), else m-major;
// trans_b: B is stored p-major (B(k,p) = b[p*K+k]), else k-major. `rowsum` receives
// sum_k A(m0+r, k) (used for dbias). The flags are literals at each call site, so the
// compiler specialises this function per entry point. Written out without loops or
// arrays: llvmpipe keeps values in registers only when every index is a constant, and
// does not unroll loops for us (a loop version of this body ran about 2x slower).
fn tile(m0: u32, p0: u32, trans_a: bool, trans_b: bool, rowsum: ptr<function, vec4<f32>>)
    -> array<vec4<f32>, 4> {
  let M = sz.m;
  let K = sz.k;
  let P = sz.p;
  var c0 = vec4<f32>(0.0);
  var c1 = c0;
  var c2 = c0;
  var c3 = c0;
  var rs = c0;
  let zero = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += 4u) {
    // a_r = A(m0 + r, k0 .. k0+3); b_q = B(k0 + q, p0 .. p0+3).
    var a0: vec4<f32>;
    var a1: vec4<f32>;
    var a2: vec4<f32>;
    var a3: vec4<f32>;
    if (trans_a) {
      // A's contiguous index is m: load A(k0+q, m0..m0+3) along rows q, then transpose.
      // (m0 < M, and with ALIGN_A M is a multiple of 4, so the vec4 load is in bounds.)
      let q0 = load_a(k0 * M, m0, M, ALIGN_A);
      let q1 = select(zero, load_a(min(k0 + 1u, K - 1u) * M, m0, M, ALIGN_A), k0 + 1u < K);
      let q2 = select(zero, load_a(min(k0 + 2u, K - 1u) * M, m0, M, ALIGN_A), k0 + 2u < K);
      let q3 = select(zero, load_a(min(k0 + 3u, K - 1u) * M, m0, M, ALIGN_A), k0 + 3u < K);
      a0 = vec4<f32>(q0.x, q1.x, q2.x, q3.x);
      a1 = vec4<f32>(q0.y, q1.y, q2.y, q3.y);
      a2 = vec4<f32>(q0.z, q1.z, q2.z, q3.z);
      a3 = vec4<f32>(q0.w, q1.w, q2.w, q3.w);
    } else {
      a0 = load_a(m0 * K, k0, K, ALIGN_A);
      a1 = load_a(min(m0 + 1u, M - 1u) * K, k0, K, ALIGN_A);
      a2 = load_a(min(m0 + 2u, M - 1u) * K, k0, K, ALIGN_A);
      a3 = load_a(min(m0 + 3u, M - 1u) * K, k0, K, ALIGN_A);
    }
    var b0: vec4<f32>;
    var b1: vec4<f32>;
    var b2: vec4<f32>;
    var b3: vec4<f32>;
    if (trans_b) {
      // B's contiguous index is k: load B(k0..k0+3, p0+j) along columns j, then transpose.
      let e0 = load_b(p0 * K, k0, K, ALIGN_B);
      let e1 = load_b(min(p0 + 1u, P - 1u) * K, k0, K, ALIGN_B);
      let e2 = load_b(min(p0 + 2u, P - 1u) * K, k0, K, ALIGN_B);
      let e3 = load_b(min(p0 + 3u, P - 1u) * K, k0, K, ALIGN_B);
      b0 = vec4<f32>(e0.x, e1.x, e2.x, e3.x);
      b1 = vec4<f32>(e0.y, e1.y, e2.y, e3.y);
      b2 = vec4<f32>(e0.z, e1.z, e2.z, e3.z);
      b3 = vec4<f32>(e0.w, e1.w, e2.w, e3.w);
    } else {
      b0 = load_b(k0 * P, p0, P, ALIGN_B);
      b1 = select(zero, load_b(min(k0 + 1u, K - 1u) * P, p0, P, ALIGN_B), k0 + 1u < K);
      b2 = select(zero, load_b(min(k0 + 2u, K - 1u) * P, p0, P, ALIGN_B), k0 + 2u < K);
      b3 = select(zero, load_b(min(k0 + 3u, K - 1u) * P, p0, P, ALIGN_B), k0 + 3u < K);
    }
    c0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
    c1 += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
    c2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
    c3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
    let one = vec4<f32>(1.0);
    rs += vec4<f32>(dot(a0, one), dot(a1, one), dot(a2, one), dot(a3, one));
  }
  *rowsum = rs;
  return array<vec4<f32>, 4>(c0, c1, c2, c3);
}

// Stores rows m0..m0+3, columns p0..p0+3 of C [M, P], skipping what lies outside. When P
// is not a multiple of 4 a row of the tile straddles two vec4s of c, which neighbouring
// threads share; each thread then writes only its own scalar components (no race).
fn store(m0: u32, p0: u32, acc: array<vec4<f32>, 4>) {
  let M = sz.m;
  let P = sz.p;
  for (var r = 0u; r < 4u; r++) {
    let m = m0 + r;
    if (m >= M) { return; }
    if ((P & 3u) == 0u) {
      if (p0 < P) { c[(m * P + p0) >> 2u] = acc[r]; }
    } else {
      for (var j = 0u; j < 4u; j++) {
        let i = m * P + p0 + j;
        if (p0 + j < P) { c[i >> 2u][i & 3u] = acc[r][j]; }
      }
    }
  }
}

@compute @workgroup_size(WG_P, WG_M)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m0 = gid.y * 4u;
  let p0 = gid.x * 4u;
  if (m0 >= sz.m || p0 >= sz.p) { return; }
  var rs: vec4<f32>;
  var acc = tile(m0, p0, false, true, &rs);
  if (HAS_BIAS) {
    var bias = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) { bias[j] = vec[min(p0 + j, sz.p - 1u)]; }
    for (var r = 0u; r < 4u; r++) { acc[r] += bias; }
  }
  store(m0, p0, acc);
}

@compute @workgroup_size(WG_P, WG_M)
fn backward_inp(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m0 = gid.y * 4u;
  let p0 = gid.x * 4u;
  if (m0 >= sz.m || p0 >= sz.p) { return; }
  var rs: vec4<f32>;
  store(m0, p0, tile(m0, p0, false, false, &rs));
}

@compute @workgroup_size(WG_P, WG_M)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m0 = gid.y * 4u;
  let p0 = gid.x * 4u;
  if (m0 >= sz.m || p0 >= sz.p) { return; }
  var rs: vec4<f32>;
  store(m0, p0, tile(m0, p0, true, false, &rs));
  // dbias[o] = sum_n dout[n, o] = sum_k A(o, k): the first column of threads writes it.
  if (HAS_BIAS && p0 == 0u) {
    for (var r = 0u; r < 4u; r++) {
      if (m0 + r < sz.m) { vec[m0 + r] = rs[r]; }
    }
  }
}
