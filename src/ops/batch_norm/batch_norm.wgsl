// Batch normalization, training and inference, forward and backward.
//
// The input is viewed as [N, C, S]: N examples, C channels, S = H*W (BatchNorm2d), L
// (BatchNorm1d on [N, C, L]) or 1 (BatchNorm1d on [N, C]). Channel c owns the N "rows"
// inp[n, c, 0..S), each contiguous, M = N*S values in all. Per channel:
//
//   mean = (1/M) sum x                rstd = 1 / sqrt(var + eps)
//   var  = (1/M) sum (x - mean)^2     (biased; running_var gets var * M/(M-1))
//   xhat = (x - mean) * rstd          out  = xhat * weight + bias
//
//   dbias   = sum dout                dweight = sum dout * xhat
//   dinp    = weight * rstd * (dout - dbias/M - xhat * dweight/M)        (training)
//   dinp    = weight * rstd * dout                                       (EVAL = 1)
//
// Seven entry points, three per direction and a counter, all launched back to back without host waits:
//
//   stats_partial     one workgroup per (channel c, group g): Welford/Chan statistics
//                     (count, mean, m2) of its slice of channel c -> partial[c*G + g]
//   stats_finalize    one thread per channel: Chan-merges the G partials into mean, rstd
//                     (the cache saved for backward) and updates running_mean/var (TRACK)
//   count_batch       one thread: num_batches_tracked += 1, after stats_finalize read it
//   normalize         one thread per 4 consecutive elements: out = xhat * weight + bias
//   backward_partial  like stats_partial: (sum dout, sum dout*xhat) -> partial[c*G + g]
//   backward_finalize one thread per channel: dweight, dbias, and coef = (weight*rstd,
//                     dbias/M, dweight/M) for dinp
//   backward_dinp     one thread per 4 consecutive elements: dinp from dout, inp, coef
//
// Splitting each channel over G workgroups keeps a large device busy whether C is 6 or
// 512 (the host picks G). The statistics never form E[x^2] - E[x]^2, which loses every
// digit in float32 when |mean| >> std: each thread takes 4 values at a time, forms their
// mean and centred sum of squares exactly (two-pass on a vec4 in registers), and merges
// them into its running (count, mean, m2) with Chan's formula; the workgroup then merges
// its threads' triples the same way in a tree, and stats_finalize merges the groups'.
//
// Partial reductions read the input as vec4. A vec4 index q covers flat elements
// 4q..4q+3; work item j of channel c is the k-th vec4 touching row n (j = n*K + k), and
// lanes outside the row are masked out, so any S works (S % 4 == 0 gives K = S/4 and no
// masking). Elementwise passes write vec4s over the flat index; the tail vec4 writes into
// the buffer's padding (pooled buffers are multiples of 256 bytes).
//
// With EVAL = 1 the bindings named mean and rstd hold running_mean and running_var, and
// rstd is computed in place as 1/sqrt(running_var + eps): one elementwise kernel normalizes
// with the running statistics, and backward_* differentiate it (dinp = weight*rstd*dout).
// With AFFINE = 0 weight and bias are bound to a placeholder buffer and taken as 1 and 0.
//
// Bindings (0 is always the uniform params):
//   stats_partial:     1 inp, 2 partial (out)
//   stats_finalize:    1 partial, 2 mean (out), 3 rstd (out), 4 running_mean, 5 running_var,
//                      6 num_batches_tracked (read: with CUMULATIVE = 1 the update weight is
//                      1/k for the k-th batch, k = num_batches_tracked + 1)
//   count_batch:       1 num_batches_tracked (in/out)
//   normalize:         1 inp, 2 mean, 3 rstd, 4 weight, 5 bias, 6 out
//   backward_partial:  1 inp, 2 dout, 3 mean, 4 rstd, 5 partial (out)
//   backward_finalize: 1 partial, 2 rstd, 3 weight, 4 dweight (out), 5 dbias (out), 6 coef (out)
//   backward_dinp:     1 inp, 2 dout, 3 mean, 4 rstd, 5 coef, 6 dinp (out)
// Dispatch: partial passes C*G workgroups; finalize passes ceil(C/WG); elementwise passes
// ceil(ceil(N*C*S/4)/WG); all split over x and y (linear id = x + y * num_workgroups.x).

override WG: u32 = 256u;     // threads per workgroup (a power of two)
override EVAL: u32 = 0u;     // 1: normalize with running statistics
override AFFINE: u32 = 1u;   // 0: no weight and bias
override TRACK: u32 = 0u;    // 1: stats_finalize updates running_mean and running_var
override CUMULATIVE: u32 = 0u; // 1: the update weight is 1/k (PyTorch's momentum=None)

struct Params {
  n: u32,        // N
  c: u32,        // C
  s: u32,        // S, elements per (example, channel) row
  total: u32,    // N*C*S
  k: u32,        // vec4 items per row (S/4 when S % 4 == 0)
  groups: u32,   // G, workgroups per channel in the partial passes
  items: u32,    // work items per group: ceil(N*K / G)
  m: f32,        // M = N*S, values per channel
  eps: f32,
  factor: f32,   // running = (1 - factor) * running + factor * batch
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// stats_partial, normalize, backward_partial, backward_dinp
@group(0) @binding(1) var<storage, read> inp: array<vec4<f32>>;
// stats_partial
@group(0) @binding(2) var<storage, read_write> partial_out: array<vec4<f32>>;
// stats_finalize, backward_finalize
@group(0) @binding(1) var<storage, read> partial_in: array<vec4<f32>>;
// stats_finalize
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(6) var<storage, read> batches_seen: array<f32>;
// count_batch
@group(0) @binding(1) var<storage, read_write> num_batches_tracked: array<f32>;
// normalize
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;
// backward_partial, backward_dinp
@group(0) @binding(2) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b_mean: array<f32>;
@group(0) @binding(4) var<storage, read> b_rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_partial_out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> coef: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dinp: array<vec4<f32>>;
// backward_finalize
@group(0) @binding(2) var<storage, read> f_rstd: array<f32>;
@group(0) @binding(3) var<storage, read> f_weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(6) var<storage, read_write> coef_out: array<vec4<f32>>;

var<workgroup> w_count: array<f32, WG>;
var<workgroup> w_mean: array<f32, WG>;
var<workgroup> w_m2: array<f32, WG>;

// Chan et al.: merges (nb, mb, m2b) into (na, ma, m2a). Exact in real arithmetic; in
// float32 its error does not grow with |mean| / std.
fn chan(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  let n = a.x + b.x;
  if (b.x == 0.0) { return a; }
  let delta = b.y - a.y;
  return vec3<f32>(n, a.y + delta * (b.x / n), a.z + b.z + delta * delta * (a.x * b.x / n));
}

// Work item (n, kk) of channel c: the kk-th vec4 touching row n, and which of its 4 lanes
// lie in the row.
struct Item { q: u32, mask: vec4<bool>, count: u32 }

fn item(c: u32, n: u32, kk: u32) -> Item {
  let start = (n * p.c + c) * p.s;
  let q = start / 4u + kk;
  let lo = max(start, 4u * q);
  let hi = min(start + p.s, 4u * q + 4u);
  let lane = vec4<u32>(0u, 1u, 2u, 3u) + 4u * q;
  return Item(q, (lane >= vec4<u32>(lo)) & (lane < vec4<u32>(hi)), select(0u, hi - lo, hi > lo));
}

// Walks j = j0, j0 + WG, ... as (n, kk) = (j / K, j % K) without a division per step
// (integer division is slow on CPU adapters).
struct Walk { n: u32, kk: u32 }

fn walk_start(j: u32) -> Walk {
  return Walk(j / p.k, j % p.k);
}

fn walk_next(w: Walk) -> Walk {
  var kk = w.kk + WG % p.k;
  var n = w.n + WG / p.k;
  if (kk >= p.k) { kk -= p.k; n += 1u; }
  return Walk(n, kk);
}

// Workgroup (c, g) from its linear id, and its work items [j0, j1): (c, g, j0, j1).
fn slice(wid: vec3<u32>, nwg: vec3<u32>) -> vec4<u32> {
  let w = wid.x + wid.y * nwg.x;
  let c = w / p.groups;
  let g = w - c * p.groups;
  let j0 = g * p.items;
  return vec4<u32>(c, g, j0, min(j0 + p.items, p.n * p.k));
}

fn channel_rstd(c: u32) -> f32 {
  if (EVAL == 1u) { return inverseSqrt(b_rstd[c] + p.eps); }
  return b_rstd[c];
}

@compute @workgroup_size(WG)
fn stats_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) t: u32) {
  let r = slice(wid, nwg);
  if (r.x >= p.c) { return; } // uniform per workgroup: safe before the barriers
  var acc = vec3<f32>(0.0);
  var wk = walk_start(r.z + t);
  for (var j = r.z + t; j < r.w; j += WG) {
    let it = item(r.x, wk.n, wk.kk);
    wk = walk_next(wk);
    if (it.count == 0u) { continue; }
    let v = inp[it.q];
    let cnt = f32(it.count);
    let m = dot(select(vec4<f32>(0.0), v, it.mask), vec4<f32>(1.0)) / cnt;
    let d = select(vec4<f32>(0.0), v - m, it.mask);
    acc = chan(acc, vec3<f32>(cnt, m, dot(d, d)));
  }
  w_count[t] = acc.x;
  w_mean[t] = acc.y;
  w_m2[t] = acc.z;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (t < h) {
      let m = chan(vec3<f32>(w_count[t], w_mean[t], w_m2[t]),
                   vec3<f32>(w_count[t + h], w_mean[t + h], w_m2[t + h]));
      w_count[t] = m.x;
      w_mean[t] = m.y;
      w_m2[t] = m.z;
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    partial_out[r.x * p.groups + r.y] =
      vec4<f32>(w_count[0], w_mean[0], w_m2[0], 0.0);
  }
}

@compute @workgroup_size(WG)
fn stats_finalize(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.c) { return; }
  var acc = vec3<f32>(0.0);
  for (var g = 0u; g < p.groups; g++) {
    acc = chan(acc, partial_in[c * p.groups + g].xyz);
  }
  mean_out[c] = acc.y;
  rstd_out[c] = inverseSqrt(acc.z / p.m + p.eps);
  if (TRACK == 1u) {
    var f = p.factor;
    if (CUMULATIVE == 1u) { f = 1.0 / (batches_seen[0] + 1.0); }
    running_mean[c] = (1.0 - f) * running_mean[c] + f * acc.y;
    running_var[c] = (1.0 - f) * running_var[c] + f * acc.z / (p.m - 1.0);
  }
}

@compute @workgroup_size(1)
fn count_batch() {
  if (p.c == 0u) { return; } // (reads p: every entry point binds the uniform at 0)
  num_batches_tracked[0] += 1.0;
}

// The channel of each of the 4 flat elements 4q..4q+3.
fn channels(q: u32) -> vec4<u32> {
  return ((vec4<u32>(0u, 1u, 2u, 3u) + 4u * q) / p.s) % p.c;
}

fn elementwise_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = elementwise_id(gid, nwg);
  if (4u * q >= p.total) { return; }
  if (p.s % 4u == 0u) { // one channel per vec4: 4 loads of per-channel values, not 16
    let c = ((4u * q) / p.s) % p.c;
    var rs = rstd[c];
    if (EVAL == 1u) { rs = inverseSqrt(rs + p.eps); }
    if (AFFINE == 1u) { out[q] = (inp[q] - mean[c]) * (rs * weight[c]) + bias[c]; }
    else { out[q] = (inp[q] - mean[c]) * rs; }
    return;
  }
  let c = channels(q);
  var mu = vec4<f32>(mean[c.x], mean[c.y], mean[c.z], mean[c.w]);
  var rs = vec4<f32>(rstd[c.x], rstd[c.y], rstd[c.z], rstd[c.w]);
  if (EVAL == 1u) { rs = inverseSqrt(rs + p.eps); }
  var y = (inp[q] - mu) * rs;
  if (AFFINE == 1u) {
    y = y * vec4<f32>(weight[c.x], weight[c.y], weight[c.z], weight[c.w]) +
        vec4<f32>(bias[c.x], bias[c.y], bias[c.z], bias[c.w]);
  }
  out[q] = y;
}

@compute @workgroup_size(WG)
fn backward_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) t: u32) {
  let r = slice(wid, nwg);
  if (r.x >= p.c) { return; }
  let mu = b_mean[r.x];
  let rs = channel_rstd(r.x);
  var sum_dout = 0.0;
  var sum_dout_xhat = 0.0;
  var wk = walk_start(r.z + t);
  for (var j = r.z + t; j < r.w; j += WG) {
    let it = item(r.x, wk.n, wk.kk);
    wk = walk_next(wk);
    if (it.count == 0u) { continue; }
    let g = select(vec4<f32>(0.0), dout[it.q], it.mask);
    sum_dout += dot(g, vec4<f32>(1.0));
    sum_dout_xhat += dot(g, select(vec4<f32>(0.0), (inp[it.q] - mu) * rs, it.mask));
  }
  w_count[t] = sum_dout;
  w_mean[t] = sum_dout_xhat;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (t < h) {
      w_count[t] += w_count[t + h];
      w_mean[t] += w_mean[t + h];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    b_partial_out[r.x * p.groups + r.y] =
      vec4<f32>(w_count[0], w_mean[0], 0.0, 0.0);
  }
}

@compute @workgroup_size(WG)
fn backward_finalize(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.c) { return; }
  var sums = vec2<f32>(0.0);
  for (var g = 0u; g < p.groups; g++) { sums += partial_in[c * p.groups + g].xy; }
  var rs = f_rstd[c];
  if (EVAL == 1u) { rs = inverseSqrt(rs + p.eps); }
  var w = 1.0;
  if (AFFINE == 1u) {
    w = f_weight[c];
    dbias[c] = sums.x;
    dweight[c] = sums.y;
  }
  if (EVAL == 1u) { coef_out[c] = vec4<f32>(w * rs, 0.0, 0.0, 0.0); }
  else { coef_out[c] = vec4<f32>(w * rs, sums.x / p.m, sums.y / p.m, 0.0); }
}

@compute @workgroup_size(WG)
fn backward_dinp(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = elementwise_id(gid, nwg);
  if (4u * q >= p.total) { return; }
  if (p.s % 4u == 0u) { // one channel per vec4
    let c = ((4u * q) / p.s) % p.c;
    let k = coef[c];
    let xhat = (inp[q] - b_mean[c]) * channel_rstd(c);
    dinp[q] = k.x * (dout[q] - k.y - xhat * k.z);
    return;
  }
  let c = channels(q);
  let mu = vec4<f32>(b_mean[c.x], b_mean[c.y], b_mean[c.z], b_mean[c.w]);
  let rs = vec4<f32>(channel_rstd(c.x), channel_rstd(c.y), channel_rstd(c.z), channel_rstd(c.w));
  let k0 = coef[c.x];
  let k1 = coef[c.y];
  let k2 = coef[c.z];
  let k3 = coef[c.w];
  let scale = vec4<f32>(k0.x, k1.x, k2.x, k3.x);
  let mean_dout = vec4<f32>(k0.y, k1.y, k2.y, k3.y);
  let mean_dout_xhat = vec4<f32>(k0.z, k1.z, k2.z, k3.z);
  let xhat = (inp[q] - mu) * rs;
  dinp[q] = scale * (dout[q] - mean_dout - xhat * mean_dout_xhat);
}
