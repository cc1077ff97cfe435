// Layer normalization over the last D elements of each of the M rows, forward and backward:
//
//   forward           mean[m] = 1/D sum_j inp[m, j]
//                     rstd[m] = 1 / sqrt(1/D sum_j (inp[m, j] - mean[m])^2 + eps)
//                     out[m, j] = (inp[m, j] - mean[m]) * rstd[m] * weight[j] + bias[j]
//   backward          with xhat = (inp - mean) * rstd and g = dout * weight, per row:
//                     dinp[m, j] = rstd[m] * (g[j] - 1/D sum_k g[k] - xhat[j] * 1/D sum_k g[k] xhat[k])
//   backward_params   dweight[j] = sum_m dout[m, j] * xhat[m, j]
//                     dbias[j]   = sum_m dout[m, j]
//
// forward and backward: TPR threads per row, WG / TPR rows per workgroup. Each of a row's
// threads walks it in chunks of 4 elements (lane, lane + TPR, ... in chunk units), so
// neighbouring threads read neighbouring vec4s, and keeps partial sums in registers; a
// tree in workgroup memory (log2(TPR) barriers) adds the TPR partials of each row. TPR = 1
// (a row per thread) needs no barrier at all: the choice on llvmpipe, where barriers cost
// more than the strided loads; GPUs want TPR of 64 to 256 for long rows. The row is read
// again for each pass; it sits in cache (a LeNet row is at most 3456 floats, 13.5 KiB).
//
// Numerical stability (forward): pass 1 sums the row to a first mean `mean0`; pass 2 sums
// the deviations d = x - mean0 and their squares in the same sweep. In exact arithmetic
// sum(d) = 0; in float32 it holds the rounding error of mean0, which "corrected two-pass"
// folds back in: mean = mean0 + sum(d) / D, var = sum(d^2) / D - (sum(d) / D)^2. The
// second term is tiny, so there is no cancellation even for a row of mean 1e4 and std 1,
// where E[x^2] - E[x]^2 in float32 would lose every digit.
//
// backward_params: one thread per 4 columns (a vec4 of dweight and dbias), looping over the
// rows [m0, m1) and recomputing xhat from the saved mean and rstd. Column sums without float
// atomics; neighbouring threads read neighbouring vec4s of each row. The host splits M rows
// into dispatches of at most MAX_LOOP (llvmpipe silently ends a loop after 65535
// iterations): the first writes the sums (ACCUMULATE = false), the next add to them.
//
// Gradients overwrite: out, dinp, dweight and dbias are fresh buffers written whole;
// the autograd tape sums gradients that meet.
//
// ALIGN = true promises D % 4 == 0: every row starts on a vec4 boundary and all loads and
// stores are vec4. Otherwise a chunk is gathered and scattered one scalar at a time (rows
// then straddle vec4s that two threads share; each writes only its own components).
// Elements past D read as 0 and are never stored. AFFINE = false ignores weight and bias
// (they are still bound, to a placeholder buffer). WG and TPR are powers of two, TPR <= WG.
//
// Bindings (all f32; everything but mean and rstd is bound as a vec4 array). Entry points
// give some binding numbers to different variables (WGSL allows that when no entry point
// uses both):
//   forward          0 params, 1 inp, 2 weight, 3 bias, 4 out, 5 mean, 6 rstd
//   backward         0 params, 1 inp, 2 weight, 3 dout, 4 mean, 5 rstd, 6 dinp
//   backward_params  0 params, 1 inp, 2 dweight, 3 dout, 4 mean, 5 rstd, 6 dbias
// Dispatch: forward and backward ceil(M / (WG / TPR)) workgroups, split over x and y
// (linear id = x + y * num_workgroups.x); backward_params ceil(ceil(D / 4) / WG).

override WG: u32 = 64u;
override TPR: u32 = 64u; // threads per row (forward, backward); a power of two dividing WG
override ALIGN: bool = true;
override AFFINE: bool = true;
override ACCUMULATE: bool = false; // backward_params: add to dweight and dbias

struct Params {
  m: u32,   // rows
  d: u32,   // elements per row (the normalized size)
  eps: f32,
  m0: u32,  // backward_params: the rows [m0, m1) of this dispatch
  m1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// forward
@group(0) @binding(1) var<storage, read> inp: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;

// backward (inp, weight as above; mean and rstd only read)
@group(0) @binding(3) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mean_in: array<f32>;
@group(0) @binding(5) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> dinp: array<vec4<f32>>;

// backward_params (inp, dout, mean_in, rstd_in as above)
@group(0) @binding(2) var<storage, read_write> dweight: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dbias: array<vec4<f32>>;

var<workgroup> partial: array<vec2<f32>, WG>;

// v with the elements of chunk k (elements 4k .. 4k+3) that lie past the row's end set
// to 0. A select, not a product: pooled buffers may hold NaN in their padding.
fn masked(k: u32, v: vec4<f32>) -> vec4<f32> {
  if (ALIGN) { return v; }
  return select(vec4<f32>(0.0), v, 4u * k + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.d));
}

// Chunk k of row m of inp (elements past D read as 0).
fn load_inp(m: u32, k: u32) -> vec4<f32> {
  if (ALIGN) { return inp[m * (p.d >> 2u) + k]; }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let i = m * p.d + 4u * k + j;
    if (4u * k + j < p.d) { v[j] = inp[i >> 2u][i & 3u]; }
  }
  return v;
}

fn load_dout(m: u32, k: u32) -> vec4<f32> {
  if (ALIGN) { return dout[m * (p.d >> 2u) + k]; }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let i = m * p.d + 4u * k + j;
    if (4u * k + j < p.d) { v[j] = dout[i >> 2u][i & 3u]; }
  }
  return v;
}

// Chunk k of weight (bias): the vector starts at element 0, so chunks are always whole
// vec4s; elements past D read as 0.
fn load_weight(k: u32) -> vec4<f32> {
  if (AFFINE) { return masked(k, weight[k]); }
  return masked(k, vec4<f32>(1.0));
}

fn load_bias(k: u32) -> vec4<f32> {
  if (AFFINE) { return masked(k, bias[k]); }
  return vec4<f32>(0.0);
}

// Stores chunk k of row m of out (dinp), skipping elements past D. Two functions, not one
// with a flag: an entry point must not even mention the other's output binding.
fn store_out(m: u32, k: u32, v: vec4<f32>) {
  if (ALIGN) { out[m * (p.d >> 2u) + k] = v; return; }
  for (var j = 0u; j < 4u; j++) {
    let i = m * p.d + 4u * k + j;
    if (4u * k + j < p.d) { out[i >> 2u][i & 3u] = v[j]; }
  }
}

fn store_dinp(m: u32, k: u32, v: vec4<f32>) {
  if (ALIGN) { dinp[m * (p.d >> 2u) + k] = v; return; }
  for (var j = 0u; j < 4u; j++) {
    let i = m * p.d + 4u * k + j;
    if (4u * k + j < p.d) { dinp[i >> 2u][i & 3u] = v[j]; }
  }
}

// Sum of v over the TPR threads of a row, returned to each of them. Called in uniform
// control flow by every thread of the workgroup; the last barrier lets the next call
// reuse `partial`. With one thread per row there is nothing to add and no barrier.
fn row_sum(t: u32, v: vec2<f32>) -> vec2<f32> {
  if (TPR == 1u) { return v; }
  let lane = t % TPR;
  partial[t] = v;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { partial[t] += partial[t + s]; }
    workgroupBarrier();
  }
  let total = partial[t - lane];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) t: u32) {
  // Row m, and this thread's lane in it. A row past the end (in the last workgroup) is
  // computed on the last row, to keep every thread at the barriers, and not stored.
  let m = (wid.x + wid.y * nwg.x) * (WG / TPR) + t / TPR;
  let row = min(m, p.m - 1u);
  let lane = t % TPR;
  let chunks = (p.d + 3u) / 4u;
  let n = f32(p.d);

  // Pass 1: a first mean.
  var s = vec4<f32>(0.0);
  for (var k = lane; k < chunks; k += TPR) { s += load_inp(row, k); }
  let mean0 = row_sum(t, vec2<f32>(s.x + s.y + s.z + s.w, 0.0)).x / n;

  // Pass 2: deviations from it, and their squares (corrected two-pass, see the header).
  var s1 = vec4<f32>(0.0);
  var s2 = vec4<f32>(0.0);
  for (var k = lane; k < chunks; k += TPR) {
    let dv = masked(k, load_inp(row, k) - mean0);
    s1 += dv;
    s2 += dv * dv;
  }
  let sums = row_sum(t, vec2<f32>(s1.x + s1.y + s1.z + s1.w, s2.x + s2.y + s2.z + s2.w));
  let shift = sums.x / n; // mean - mean0
  let r = 1.0 / sqrt(max(sums.y / n - shift * shift, 0.0) + p.eps);
  if (m >= p.m) { return; } // no barrier below

  // Pass 3: normalize, scale and shift.
  for (var k = lane; k < chunks; k += TPR) {
    let xhat = (load_inp(m, k) - mean0 - shift) * r;
    store_out(m, k, xhat * load_weight(k) + load_bias(k));
  }
  if (lane == 0u) {
    mean[m] = mean0 + shift;
    rstd[m] = r;
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) t: u32) {
  let m = (wid.x + wid.y * nwg.x) * (WG / TPR) + t / TPR;
  let row = min(m, p.m - 1u);
  let lane = t % TPR;
  let chunks = (p.d + 3u) / 4u;
  let n = f32(p.d);
  let mu = mean_in[row];
  let r = rstd_in[row];

  // Pass 1: sum g and sum g * xhat (loaded elements past D are 0, so g is 0 there).
  var s1 = vec4<f32>(0.0);
  var s2 = vec4<f32>(0.0);
  for (var k = lane; k < chunks; k += TPR) {
    let g = load_dout(row, k) * load_weight(k);
    s1 += g;
    s2 += g * (load_inp(row, k) - mu) * r;
  }
  let sums = row_sum(t, vec2<f32>(s1.x + s1.y + s1.z + s1.w, s2.x + s2.y + s2.z + s2.w));
  let mean_g = sums.x / n;
  let mean_gx = sums.y / n;
  if (m >= p.m) { return; }

  // Pass 2: dinp.
  for (var k = lane; k < chunks; k += TPR) {
    let g = load_dout(m, k) * load_weight(k);
    let xhat = (load_inp(m, k) - mu) * r;
    store_dinp(m, k, r * (g - mean_g - xhat * mean_gx));
  }
}

@compute @workgroup_size(WG)
fn backward_params(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  if (4u * k >= p.d) { return; }
  var dw = vec4<f32>(0.0);
  var db = vec4<f32>(0.0);
  for (var m = p.m0; m < p.m1; m++) {
    let dv = load_dout(m, k);
    dw += dv * (load_inp(m, k) - mean_in[m]) * rstd_in[m];
    db += dv;
  }
  // dweight and dbias start at element 0: chunk k is one vec4 (its tail lies in the
  // buffer's padding, which nothing reads).
  if (ACCUMULATE) {
    dw += dweight[k];
    db += dbias[k];
  }
  dweight[k] = dw;
  dbias[k] = db;
}
