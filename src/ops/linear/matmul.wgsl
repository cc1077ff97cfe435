// Linear layer as register-blocked matrix products, forward and backward. On llvmpipe the
// host runs the uniform-chunk kernels at the end of this file (`weight_grad` for the weight
// and bias gradients, and from a batch of 8 `forward_batch` and `backward_inp_batch`)
// whenever the sizes allow; the three entry points described first are the general path:
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
// A fused activation (linear + sigmoid or ReLU in one pass each way): ACT applies it to
// the forward's output as it is stored (1 ReLU, 2 sigmoid; forward_batch too); DACT (same
// codes) makes the backward products read dout through it, multiplying each value of A
// (dout, in backward_inp and backward_weight) by the activation's derivative at the same
// place, from the forward's saved output y: y (1 - y) for sigmoid, y > 0 for ReLU (as
// activation.wgsl's backward kernels compute it). dbias, summed from the same A, follows.
// The uniform-chunk kernels get dout through it from their packs (pack_dout, pack_rows).
//
// Bindings: 0 params (uniform: M, K, P), 1 a, 2 b, 3 c (all f32, bound as vec4 arrays),
// 4 bias (forward, read when HAS_BIAS = 1) or dbias (backward_weight, written; backward_inp
// leaves it unbound), 5 y (the saved output, read when DACT != 0; every entry point of the
// three binds it).
// Dispatch: [ceil(P / (4 WG_P)), ceil(M / (4 WG_M))].
// Gradients overwrite (dinp, dweight, dbias are fresh tensors); the autograd tape sums them.

override WG_M: u32 = 8u;
override WG_P: u32 = 8u;
override ALIGN_A: bool = true;
override ALIGN_B: bool = true;
override HAS_BIAS: bool = true;
override ACT: u32 = 0u;  // the forward's activation on store: 0 none, 1 ReLU, 2 sigmoid
override DACT: u32 = 0u; // the backward's: A (dout) through that activation's derivative

struct Params {
  m: u32,
  k: u32,
  p: u32,
}

@group(0) @binding(0) var<uniform> sz: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> vec: array<f32>;
@group(0) @binding(5) var<storage, read> ysave: array<vec4<f32>>;

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

fn y_at(i: u32) -> f32 { return ysave[i >> 2u][i & 3u]; }

// load_a's four values times the activation's derivative at the same places (DACT != 0),
// from the saved output y, laid out as A.
fn load_a_act(row_start: u32, i: u32, len: u32, aligned: bool) -> vec4<f32> {
  let v = load_a(row_start, i, len, aligned);
  if (DACT == 0u) { return v; }
  var y = vec4<f32>(0.0);
  if (aligned) {
    y = ysave[(row_start + i) >> 2u];
  } else {
    for (var j = 0u; j < 4u; j++) {
      if (i + j < len) { y[j] = y_at(row_start + i + j); }
    }
  }
  return activate_back(v, y);
}

// g through the activation whose output is y: ReLU g (y > 0), sigmoid g y (1 - y).
fn activate_back(g: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
  if (DACT == 1u) { return select(vec4<f32>(0.0), g, y > vec4<f32>(0.0)); }
  return g * y * (1.0 - y);
}

// The forward's activation (ACT) on an output vec4.
fn activate(v: vec4<f32>) -> vec4<f32> {
  if (ACT == 1u) { return max(v, vec4<f32>(0.0)); }
  if (ACT == 2u) { return 1.0 / (1.0 + exp(-v)); }
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
      let q0 = load_a_act(k0 * M, m0, M, ALIGN_A);
      let q1 = select(zero, load_a_act(min(k0 + 1u, K - 1u) * M, m0, M, ALIGN_A), k0 + 1u < K);
      let q2 = select(zero, load_a_act(min(k0 + 2u, K - 1u) * M, m0, M, ALIGN_A), k0 + 2u < K);
      let q3 = select(zero, load_a_act(min(k0 + 3u, K - 1u) * M, m0, M, ALIGN_A), k0 + 3u < K);
      a0 = vec4<f32>(q0.x, q1.x, q2.x, q3.x);
      a1 = vec4<f32>(q0.y, q1.y, q2.y, q3.y);
      a2 = vec4<f32>(q0.z, q1.z, q2.z, q3.z);
      a3 = vec4<f32>(q0.w, q1.w, q2.w, q3.w);
    } else {
      a0 = load_a_act(m0 * K, k0, K, ALIGN_A);
      a1 = load_a_act(min(m0 + 1u, M - 1u) * K, k0, K, ALIGN_A);
      a2 = load_a_act(min(m0 + 2u, M - 1u) * K, k0, K, ALIGN_A);
      a3 = load_a_act(min(m0 + 3u, M - 1u) * K, k0, K, ALIGN_A);
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
  for (var r = 0u; r < 4u; r++) { acc[r] = activate(acc[r]); }
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

// ---------------------------------------------------------------------------------------
// The uniform chunks (weight_grad, pack_dout, and the batch kernels below): 64 KiB scratch
// buffers that a pack (or a copy) fills as storage and the next dispatch reads as uniforms.
// On llvmpipe a storage load at a per-lane index is a loop over the 8 SIMD lanes, while a
// uniform-buffer load at a workgroup-uniform index is one load for all of them.

override RWG: u32 = 64u; // lanes per workgroup of the uniform-chunk kernels
override OB: u32 = 8u;   // weight_grad: outputs per workgroup (8 or 16)

struct RowsParams {
  m: u32, k: u32, p: u32,
  p_base: u32,        // first column (output) of this chunk
  rows_in_chunk: u32, // columns (outputs) in this chunk (a multiple of 8 unless it is the last)
}

@group(0) @binding(0) var<uniform> rp: RowsParams;
@group(0) @binding(2) var<uniform> bu: array<vec4<f32>, 4096>;
@group(0) @binding(2) var<storage, read_write> chunk_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> chunk_out4: array<vec4<f32>>;

// vec4(dot(a, w0), .., dot(a, w3)).
fn dots(a: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3));
}

// ---------------------------------------------------------------------------------------
// weight_grad: dweight[o, i] = sum_n dout[n, o] * inp[n, i] and dbias[o] = sum_n dout[n, o],
// with dout read from a uniform buffer: a lane owns 4 columns
// i0 .. i0+3 (one vec4 of each inp row), the workgroup OB (8 or 16) outputs o; per n a lane
// makes 1 storage load (inp[n, i0..]) and OB / 4 uniform ones (dout[n, o0 .. o0+OB-1]) for
// 4 OB multiply-adds. The chunks are blocks of outputs: pack_dout copies dout[:, p_base ..
// p_base + rows_in_chunk] into a uniform buffer as rows [N, CW]. Needs I % 4 == 0 and
// 8 N <= 16384.
//
// Bindings: 0 rp (m = N, k = I, p = O, p_base, rows_in_chunk = outputs in the chunk),
// 1 a (inp [N, I]), 2 bu (the chunk: [N, CW] with CW = rows_in_chunk rounded up
// to 8), 3 c (dweight [O, I]), 4 vec (dbias, written when HAS_BIAS).
// Dispatch: [ceil(I / (4 RWG)), ceil(rows_in_chunk / OB)].

// pack_dout: chunk[n, q] = dout[n, p_base + q] for q < CW (0 past O), through the fused
// activation's derivative when DACT (as load_a_act); 0 rp, 1 a (dout), 2 chunk_out, 5 y.
// Dispatch [ceil(N CW / 64)].
@compute @workgroup_size(64)
fn pack_dout(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let cw = (rp.rows_in_chunk + 7u) / 8u * 8u;
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= rp.m * cw) { return; }
  let n = i / cw;
  let q = i - n * cw;
  let o = rp.p_base + q;
  let at = n * rp.p + min(o, rp.p - 1u);
  var g = a_at(at);
  if (DACT != 0u) { g = activate_back(vec4<f32>(g), vec4<f32>(y_at(at))).x; }
  chunk_out[i] = select(0.0, g, o < rp.p);
}

@compute @workgroup_size(RWG)
fn weight_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  // The loop's bound N, times min(nwg.z, 1) = 1, which no compiler can know: Mesa 22.3's
  // lavapipe substitutes a uniform that bounds a loop with its value at the first dispatch,
  // and where that shrinks the shader (N = 2: the loop unrolled) recompiles it at every later
  // dispatch, 4-9 ms each (GPU timestamps; at batch 2, 3 and 5, not 1 or 8).
  let m = rp.m * min(nwg.z, 1u);
  let q0 = wid.y * OB; // this workgroup's first output within the chunk (uniform)
  if (q0 >= rp.rows_in_chunk) { return; }
  let cw4 = (rp.rows_in_chunk + 7u) / 8u * 2u; // vec4s per chunk row
  let i4 = wid.x * RWG + lid.x;                 // this lane's vec4 of columns
  let row4 = rp.k / 4u;                         // vec4s per inp row
  let col = min(i4, row4 - 1u);                 // clamped: lanes past I compute, do not store
  var g0 = vec4<f32>(0.0);
  var g1 = g0; var g2 = g0; var g3 = g0; var g4 = g0; var g5 = g0; var g6 = g0; var g7 = g0;
  var h0 = g0; var h1 = g0; var h2 = g0; var h3 = g0; var h4 = g0; var h5 = g0; var h6 = g0;
  var h7 = g0;
  var db0 = g0;
  var db1 = g0;
  var db2 = g0;
  var db3 = g0;
  for (var n = 0u; n < m; n++) {
    let u0 = bu[min(n * cw4 + q0 / 4u, 4095u)];
    let u1 = bu[min(n * cw4 + q0 / 4u + 1u, 4095u)];
    let x = a[n * row4 + col];
    g0 += u0.x * x;
    g1 += u0.y * x;
    g2 += u0.z * x;
    g3 += u0.w * x;
    g4 += u1.x * x;
    g5 += u1.y * x;
    g6 += u1.z * x;
    g7 += u1.w * x;
    if (HAS_BIAS) {
      db0 += u0;
      db1 += u1;
    }
    if (OB > 8u) { // outputs q0 + 8 .. q0 + 15 (past the chunk row: not stored)
      let u2 = bu[min(n * cw4 + q0 / 4u + 2u, 4095u)];
      let u3 = bu[min(n * cw4 + q0 / 4u + 3u, 4095u)];
      h0 += u2.x * x;
      h1 += u2.y * x;
      h2 += u2.z * x;
      h3 += u2.w * x;
      h4 += u3.x * x;
      h5 += u3.y * x;
      h6 += u3.z * x;
      h7 += u3.w * x;
      if (HAS_BIAS) {
        db2 += u2;
        db3 += u3;
      }
    }
  }
  let valid = min(OB, rp.rows_in_chunk - q0);
  let o0 = rp.p_base + q0;
  if (i4 < row4) {
    if (valid > 0u) { c[(o0 + 0u) * row4 + i4] = g0; }
    if (valid > 1u) { c[(o0 + 1u) * row4 + i4] = g1; }
    if (valid > 2u) { c[(o0 + 2u) * row4 + i4] = g2; }
    if (valid > 3u) { c[(o0 + 3u) * row4 + i4] = g3; }
    if (valid > 4u) { c[(o0 + 4u) * row4 + i4] = g4; }
    if (valid > 5u) { c[(o0 + 5u) * row4 + i4] = g5; }
    if (valid > 6u) { c[(o0 + 6u) * row4 + i4] = g6; }
    if (valid > 7u) { c[(o0 + 7u) * row4 + i4] = g7; }
    if (valid > 8u) { c[(o0 + 8u) * row4 + i4] = h0; }
    if (valid > 9u) { c[(o0 + 9u) * row4 + i4] = h1; }
    if (valid > 10u) { c[(o0 + 10u) * row4 + i4] = h2; }
    if (valid > 11u) { c[(o0 + 11u) * row4 + i4] = h3; }
    if (valid > 12u) { c[(o0 + 12u) * row4 + i4] = h4; }
    if (valid > 13u) { c[(o0 + 13u) * row4 + i4] = h5; }
    if (valid > 14u) { c[(o0 + 14u) * row4 + i4] = h6; }
    if (valid > 15u) { c[(o0 + 15u) * row4 + i4] = h7; }
  }
  if (HAS_BIAS && i4 == 0u) {
    for (var q = 0u; q < valid; q++) {
      let d = array<vec4<f32>, 4>(db0, db1, db2, db3);
      vec[o0 + q] = d[q / 4u][q & 3u];
    }
  }
}

// ---------------------------------------------------------------------------------------
// The batch's rows as uniforms (forward_batch, backward_inp_batch): the forward and the
// input gradient from a batch of 8, where the 4x4 tiles' 8 storage loads per 64
// multiply-adds cost most (below it, RB rows a workgroup would be mostly absent rows). The
// activations (inp for the forward, dout for the input gradient) come in a uniform chunk of
// whole rows, U [rows_in_chunk, K] (rows m_base ..); the weight is read from storage, each
// load shared by the RB rows of the workgroup:
//
//   forward_batch       lane = 4 output columns p..p+3: per 4 k, 4 storage loads
//                       (weight[p + j, k..k+3]) and RB uniform loads (the rows' inp[m,
//                       k..k+3]) for 16 RB multiply-adds
//   backward_inp_batch  lane = 4 columns p..p+3 (P % 4 == 0): per 4 k, 4 storage loads
//                       (weight[k + j, p..p+3]) and RB uniform loads (dout[m, k..k+3]) for
//                       16 RB multiply-adds
//
// Needs K % 4 == 0 (a row of U is whole vec4s). pack_rows copies rows m_base .. of A (dout)
// into the chunk through the fused activation's derivative (DACT != 0; without it the host
// copies the rows as they are).
//
// Bindings: 0 bp, 1 a (the weight), 2 bu (the chunk, uniform), 3 c (C [M, P]), 4 vec (bias,
// read when HAS_BIAS; forward_batch only); pack_rows 0 bp, 1 a (dout), 2 chunk_out4, 5 y.
// Dispatch: forward_batch and backward_inp_batch [ceil(P / (4 RWG)), ceil(rows_in_chunk /
// RB)]; pack_rows [ceil(rows_in_chunk K / 256)].

const RB = 8u; // rows of the chunk per workgroup: s0 .. s7 below, written out

struct BatchParams {
  m: u32, k: u32, p: u32,
  m_base: u32,        // first row of A in this chunk
  rows_in_chunk: u32, // rows in this chunk
}

@group(0) @binding(0) var<uniform> bp: BatchParams;

@compute @workgroup_size(64)
fn pack_rows(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u; // a vec4 of the chunk
  let k4 = bp.k / 4u;
  if (i >= bp.rows_in_chunk * k4) { return; }
  let at = bp.m_base * k4 + i;
  var g = a[at];
  if (DACT != 0u) { g = activate_back(g, ysave[at]); }
  chunk_out4[i] = g;
}

// Row r of the chunk, values k4 * 4 .. + 3 (clamped to the 64 KiB: rows past the chunk are
// computed and not stored).
fn urow(r: u32, k4: u32, j: u32) -> vec4<f32> {
  return bu[min(r * k4 + j, 4095u)];
}

// Columns p0 .. p0+3 of row r of the chunk (bias added, then the activation), those before P.
fn store_cols(r: u32, p0: u32, v: vec4<f32>, bias: vec4<f32>) {
  if (r >= bp.rows_in_chunk || p0 >= bp.p) { return; }
  let x = activate(v + bias);
  let base = (bp.m_base + r) * bp.p + p0;
  if ((bp.p & 3u) == 0u) {
    c[base >> 2u] = x;
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let i = base + j;
    if (p0 + j < bp.p) { c[i >> 2u][i & 3u] = x[j]; }
  }
}

@compute @workgroup_size(RWG)
fn forward_batch(@builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let r0 = wid.y * RB; // this workgroup's first row within the chunk (uniform)
  // The loop's bound, times min(nwg.z, 1) = 1: see weight_grad.
  let k4 = bp.k / 4u * min(nwg.z, 1u);
  let p0 = (wid.x * RWG + lid.x) * 4u;
  let last = bp.p - 1u; // columns past P are clamped: computed, not stored
  let w_0 = min(p0, last) * k4;
  let w_1 = min(p0 + 1u, last) * k4;
  let w_2 = min(p0 + 2u, last) * k4;
  let w_3 = min(p0 + 3u, last) * k4;
  var s0 = vec4<f32>(0.0);
  var s1 = s0; var s2 = s0; var s3 = s0; var s4 = s0; var s5 = s0; var s6 = s0; var s7 = s0;
  for (var j = 0u; j < k4; j++) {
    let w0 = a[w_0 + j];
    let w1 = a[w_1 + j];
    let w2 = a[w_2 + j];
    let w3 = a[w_3 + j];
    s0 += dots(urow(r0, k4, j), w0, w1, w2, w3);
    s1 += dots(urow(r0 + 1u, k4, j), w0, w1, w2, w3);
    s2 += dots(urow(r0 + 2u, k4, j), w0, w1, w2, w3);
    s3 += dots(urow(r0 + 3u, k4, j), w0, w1, w2, w3);
    s4 += dots(urow(r0 + 4u, k4, j), w0, w1, w2, w3);
    s5 += dots(urow(r0 + 5u, k4, j), w0, w1, w2, w3);
    s6 += dots(urow(r0 + 6u, k4, j), w0, w1, w2, w3);
    s7 += dots(urow(r0 + 7u, k4, j), w0, w1, w2, w3);
  }
  var bias = vec4<f32>(0.0);
  if (HAS_BIAS) {
    bias = vec4<f32>(vec[min(p0, last)], vec[min(p0 + 1u, last)], vec[min(p0 + 2u, last)],
                     vec[min(p0 + 3u, last)]);
  }
  store_cols(r0, p0, s0, bias);
  store_cols(r0 + 1u, p0, s1, bias);
  store_cols(r0 + 2u, p0, s2, bias);
  store_cols(r0 + 3u, p0, s3, bias);
  store_cols(r0 + 4u, p0, s4, bias);
  store_cols(r0 + 5u, p0, s5, bias);
  store_cols(r0 + 6u, p0, s6, bias);
  store_cols(r0 + 7u, p0, s7, bias);
}

// rows r of the chunk times the 4 x 4 block of the weight: u (row r, values k..k+3) against
// rows k..k+3 of weight columns p..p+3 (w0 .. w3).
fn mix(u: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
  return u.x * w0 + u.y * w1 + u.z * w2 + u.w * w3;
}

fn store_quad(r: u32, p4: u32, v: vec4<f32>) {
  if (r >= bp.rows_in_chunk || p4 >= bp.p / 4u) { return; }
  c[(bp.m_base + r) * (bp.p / 4u) + p4] = v;
}

@compute @workgroup_size(RWG)
fn backward_inp_batch(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(local_invocation_id) lid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
  let r0 = wid.y * RB;
  let k4 = bp.k / 4u * min(nwg.z, 1u); // see weight_grad
  let p4 = wid.x * RWG + lid.x;
  let row4 = bp.p / 4u;
  let col = min(p4, row4 - 1u);
  var s0 = vec4<f32>(0.0);
  var s1 = s0; var s2 = s0; var s3 = s0; var s4 = s0; var s5 = s0; var s6 = s0; var s7 = s0;
  for (var j = 0u; j < k4; j++) {
    let at = 4u * j * row4 + col;
    let w0 = a[at];
    let w1 = a[at + row4];
    let w2 = a[at + 2u * row4];
    let w3 = a[at + 3u * row4];
    s0 += mix(urow(r0, k4, j), w0, w1, w2, w3);
    s1 += mix(urow(r0 + 1u, k4, j), w0, w1, w2, w3);
    s2 += mix(urow(r0 + 2u, k4, j), w0, w1, w2, w3);
    s3 += mix(urow(r0 + 3u, k4, j), w0, w1, w2, w3);
    s4 += mix(urow(r0 + 4u, k4, j), w0, w1, w2, w3);
    s5 += mix(urow(r0 + 5u, k4, j), w0, w1, w2, w3);
    s6 += mix(urow(r0 + 6u, k4, j), w0, w1, w2, w3);
    s7 += mix(urow(r0 + 7u, k4, j), w0, w1, w2, w3);
  }
  store_quad(r0, p4, s0);
  store_quad(r0 + 1u, p4, s1);
  store_quad(r0 + 2u, p4, s2);
  store_quad(r0 + 3u, p4, s3);
  store_quad(r0 + 4u, p4, s4);
  store_quad(r0 + 5u, p4, s5);
  store_quad(r0 + 6u, p4, s6);
  store_quad(r0 + 7u, p4, s7);
}
