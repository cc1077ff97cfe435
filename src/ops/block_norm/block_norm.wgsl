// Normalization over blocks, forward and backward: GroupNorm and ghost batch normalization.
//
// The input is viewed as [N, C, S]: N examples, C channels, S = the product of the dims
// after C (H*W, or L, or 1). A "row" is the S contiguous values inp[n, c, 0..S); row
// r = n*C + c starts at flat element r*S. A statistics set is a block of BN consecutive
// examples by BC consecutive channels, with all S positions of each:
//
//   GroupNorm(G)       BN = 1, BC = C/G   set (n, g): one example, its g-th group of channels
//   ghost batch norm   BN = V, BC = 1     set (a, c): examples aV .. aV+V-1 (the last block
//                                         holds the remainder N - aV if V does not divide N)
//
// Sets are numbered set = a*CB + b, a = n / BN the example block (AB = ceil(N/BN) of them)
// and b = c / BC the channel block (CB = C/BC of them): for GroupNorm that is [N, G], the
// layout of PyTorch's saved mean and rstd. Per set, over its M = nb*BC*S values (nb the
// examples in its block), and per channel c for the affine map:
//
//   mean = (1/M) sum x             rstd = 1 / sqrt((1/M) sum (x - mean)^2 + eps)  (biased)
//   xhat = (x - mean) * rstd       out  = xhat * weight[c] + bias[c]
//
//   g = dout * weight[c]           dinp = rstd * (g - mean_set(g) - xhat * mean_set(g xhat))
//   dweight[c] = sum_{n,s} dout * xhat               dbias[c] = sum_{n,s} dout
//
// dinp is the gradient through xhat minus its projection on the two directions that
// normalization removes from each set (a shift, and a scaling along xhat).
//
// Two kinds of pass, and no workgroup memory or barrier anywhere (barriers are what a CPU
// adapter such as llvmpipe pays most for):
//
//   row passes  one thread per run of RUN consecutive rows (RUN > 1 gives threads enough
//               work when S is small, e.g. S = 1 after a Linear layer). A thread finds the
//               (example block, channel, channel block) of its first row with a few integer
//               divisions, then steps to the next row with additions and compares: no
//               division per element or per row. Within a row it reads the S values in
//               chunks of 4, as vec4 when ALIGN (S % 4 == 0: every row starts on a vec4),
//               otherwise gathered one at a time.
//     row_stats      each row's (mean, m2): its mean and sum of squared deviations
//     normalize      out, from the row's set statistics and its channel's weight and bias
//     row_grads      each row's (sum dout, sum dout*xhat)
//     backward_dinp  dinp, from the row's set coefficients
//   set passes  one thread per set, then (when asked) one thread per channel, reading the
//               row partials: each set is nb*BC row partials, at rows (n, c0 .. c0+BC-1),
//               and the rows of one channel are n*C + c, so every index is a product.
//     set_stats      combines the set's rows into mean and rstd (the cache saved for the
//                    backward); with TRACK (ghost batch norm, BC = 1) the channel threads
//                    also update the running statistics, see below
//     reduce_grads   coef[set] = (mean_set(g), mean_set(g xhat)); with PARAM_GRADS the
//                    channel threads sum dweight and dbias over the N rows of their channel
//   count_batch    one thread: num_batches_tracked += 1, after set_stats has read it
//
// The parallelism is N*C rows, then the sets: plenty for llvmpipe's few cores (1536 rows
// at LeNet's first layer), little for a large GPU with long rows, where splitting each row
// over several threads (with a reduction across them) would be the next step. With S = 1
// every pass is a thread per one or a few values, and the launches dominate.
//
// Numerical stability. row_stats takes each row's mean first, then sums the deviations d
// from it and their squares: mean = mean0 + sum(d)/S, m2 = sum(d^2) - sum(d)^2/S (the
// correction holds the rounding of mean0; it never cancels). set_stats combines a set's
// rows the same way, one level up (see merge_set), and the running update merges the
// ghost batches with Chan's formula for (count, mean, m2). Nothing forms E[x^2] - E[x]^2,
// which for mean 1e4 and std 1 loses every digit in float32.
//
// Running statistics (TRACK, ghost batch norm), one update per forward, per channel c:
//   running_mean = (1 - f) running_mean + f * mean over the whole batch
//   running_var  = (1 - f) running_var  + f * (sum over ghost batches of m2) / (N*S - AB)
// The variance is the pooled within-ghost-batch variance: with equal ghost batches it is
// the average of their unbiased variances m2/(m - 1); a smaller last batch counts with its
// m - 1 degrees of freedom. With one ghost batch both are BatchNorm's update. f is the
// momentum, or 1/k at the k-th counted batch (CUMULATIVE, k = num_batches_tracked + 1).
//
// Gradients overwrite: out, dinp, dweight and dbias are fresh buffers written whole.
// AFFINE = false takes weight 1 and bias 0 (their bindings then hold placeholders, as do
// the running-statistics bindings without TRACK and dweight/dbias without PARAM_GRADS).
//
// Bindings (0 is always the uniform params; the same number names different variables in
// entry points that never use both):
//   row_stats      1 inp, 2 stats_out [rows] vec2 (mean, m2)
//   set_stats      1 partial (row_stats' output), 2 mean_out [sets], 3 rstd_out [sets],
//                  4 running_mean [C], 5 running_var [C], 6 batches_seen (num_batches_tracked)
//   count_batch    1 num_batches_tracked
//   normalize      1 inp, 2 mean, 3 rstd, 4 out, 5 weight [C], 6 bias [C]
//   row_grads      1 inp, 2 mean, 3 rstd, 4 dout, 5 grads_out [rows] vec2 (sum dout, sum dout xhat)
//   reduce_grads   1 partial (row_grads' output), 2 coef_out [sets] vec2, 3 dweight, 4 dbias,
//                  5 weight
//   backward_dinp  1 inp, 2 mean, 3 rstd, 4 dout, 5 weight, 6 coef, 7 dinp
// inp, out, dout and dinp are bound as vec4 arrays (tails past N*C*S lie in the pooled
// buffer's padding and are never stored). Dispatch: row passes ceil(ceil(rows / RUN) / WG)
// workgroups, set passes ceil((sets + C) / WG) (or ceil(sets / WG) with no channel job);
// both split over x and y (thread id = gid.x + gid.y * num_workgroups.x * WG).

override WG: u32 = 64u;
override RUN: u32 = 1u;          // rows per thread in the row passes
override ALIGN: bool = true;     // S % 4 == 0
override AFFINE: bool = true;
override TRACK: bool = false;    // set_stats updates running_mean and running_var (BC = 1)
override CUMULATIVE: bool = false; // the update weight is 1/k (PyTorch's momentum=None)
override PARAM_GRADS: bool = true; // reduce_grads writes dweight and dbias

struct Params {
  n: u32,       // N
  c: u32,       // C
  s: u32,       // S
  rows: u32,    // N*C
  bn: u32,      // BN, examples per block
  bc: u32,      // BC, channels per block
  ab: u32,      // AB = ceil(N / BN), example blocks
  cb: u32,      // CB = C / BC, channel blocks
  eps: f32,
  factor: f32,  // momentum of the running update
}

@group(0) @binding(0) var<uniform> p: Params;

// row_stats, normalize, row_grads, backward_dinp
@group(0) @binding(1) var<storage, read> inp: array<vec4<f32>>;
// row_stats
@group(0) @binding(2) var<storage, read_write> stats_out: array<vec2<f32>>;
// set_stats, reduce_grads
@group(0) @binding(1) var<storage, read> partial: array<vec2<f32>>;
// set_stats
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(6) var<storage, read> batches_seen: array<f32>;
// count_batch
@group(0) @binding(1) var<storage, read_write> num_batches_tracked: array<f32>;
// normalize, row_grads, backward_dinp
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
// normalize
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
// normalize, reduce_grads, backward_dinp
@group(0) @binding(5) var<storage, read> weight: array<f32>;
// row_grads, backward_dinp
@group(0) @binding(4) var<storage, read> dout: array<vec4<f32>>;
// row_grads
@group(0) @binding(5) var<storage, read_write> grads_out: array<vec2<f32>>;
// reduce_grads
@group(0) @binding(2) var<storage, read_write> coef_out: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;
// backward_dinp
@group(0) @binding(6) var<storage, read> coef: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read_write> dinp: array<vec4<f32>>;

fn thread_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn hsum(v: vec4<f32>) -> f32 {
  return v.x + v.y + v.z + v.w;
}

// v with the elements of chunk k (4k .. 4k+3 of a row) that lie past the row's end set to
// 0. A select, not a product: pooled buffers may hold NaN in their padding.
fn masked(k: u32, v: vec4<f32>) -> vec4<f32> {
  if (ALIGN) { return v; }
  return select(vec4<f32>(0.0), v, 4u * k + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.s));
}

// Chunk k of row r of inp (of dout); elements past the row's end read as 0. Unaligned
// chunks are gathered with constant component indices (a dynamically indexed local vector
// would live in scratch memory, which costs llvmpipe several times the load itself).
fn load_inp(r: u32, k: u32) -> vec4<f32> {
  if (ALIGN) { return inp[r * (p.s >> 2u) + k]; }
  let i = r * p.s + 4u * k;
  let left = p.s - 4u * k;
  var v = vec4<f32>(inp[i >> 2u][i & 3u], 0.0, 0.0, 0.0);
  if (left > 1u) { v.y = inp[(i + 1u) >> 2u][(i + 1u) & 3u]; }
  if (left > 2u) { v.z = inp[(i + 2u) >> 2u][(i + 2u) & 3u]; }
  if (left > 3u) { v.w = inp[(i + 3u) >> 2u][(i + 3u) & 3u]; }
  return v;
}

fn load_dout(r: u32, k: u32) -> vec4<f32> {
  if (ALIGN) { return dout[r * (p.s >> 2u) + k]; }
  let i = r * p.s + 4u * k;
  let left = p.s - 4u * k;
  var v = vec4<f32>(dout[i >> 2u][i & 3u], 0.0, 0.0, 0.0);
  if (left > 1u) { v.y = dout[(i + 1u) >> 2u][(i + 1u) & 3u]; }
  if (left > 2u) { v.z = dout[(i + 2u) >> 2u][(i + 2u) & 3u]; }
  if (left > 3u) { v.w = dout[(i + 3u) >> 2u][(i + 3u) & 3u]; }
  return v;
}

// Stores chunk k of row r of out (of dinp), skipping elements past the row's end (a
// neighbouring row's thread owns them). Two functions, not one with a flag: an entry point
// must not even mention the other's output binding.
fn store_out(r: u32, k: u32, v: vec4<f32>) {
  if (ALIGN) { out[r * (p.s >> 2u) + k] = v; return; }
  let i = r * p.s + 4u * k;
  let left = p.s - 4u * k;
  out[i >> 2u][i & 3u] = v.x;
  if (left > 1u) { out[(i + 1u) >> 2u][(i + 1u) & 3u] = v.y; }
  if (left > 2u) { out[(i + 2u) >> 2u][(i + 2u) & 3u] = v.z; }
  if (left > 3u) { out[(i + 3u) >> 2u][(i + 3u) & 3u] = v.w; }
}

fn store_dinp(r: u32, k: u32, v: vec4<f32>) {
  if (ALIGN) { dinp[r * (p.s >> 2u) + k] = v; return; }
  let i = r * p.s + 4u * k;
  let left = p.s - 4u * k;
  dinp[i >> 2u][i & 3u] = v.x;
  if (left > 1u) { dinp[(i + 1u) >> 2u][(i + 1u) & 3u] = v.y; }
  if (left > 2u) { dinp[(i + 2u) >> 2u][(i + 2u) & 3u] = v.z; }
  if (left > 3u) { dinp[(i + 3u) >> 2u][(i + 3u) & 3u] = v.w; }
}

// A row and where it lies: row r = n*C + c, its example block a with kn = n - a*BN, its
// channel c, channel block b with kc = c - b*BC. walk_next steps to row r + 1 without a
// division.
struct Walk { r: u32, a: u32, kn: u32, c: u32, b: u32, kc: u32 }

fn walk_start(r: u32) -> Walk {
  let n = r / p.c;
  let c = r - n * p.c;
  let a = n / p.bn;
  let b = c / p.bc;
  return Walk(r, a, n - a * p.bn, c, b, c - b * p.bc);
}

fn walk_next(w: Walk) -> Walk {
  var v = w;
  v.r += 1u;
  v.c += 1u;
  v.kc += 1u;
  if (v.kc == p.bc) { v.kc = 0u; v.b += 1u; }
  if (v.c == p.c) { // next example (kc is 0 already: C is a multiple of BC)
    v.c = 0u;
    v.b = 0u;
    v.kn += 1u;
    if (v.kn == p.bn) { v.kn = 0u; v.a += 1u; }
  }
  return v;
}

fn set_of(w: Walk) -> u32 {
  return w.a * p.cb + w.b;
}

// Values in the sets of example block a: nb*BC*S, nb = BN but for a last, short block.
fn set_count(a: u32) -> f32 {
  return f32((min(a * p.bn + p.bn, p.n) - a * p.bn) * p.bc * p.s);
}

// Chan et al.: merges the statistics (count, mean, m2) of two disjoint parts.
fn chan(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  if (b.x == 0.0) { return a; }
  let n = a.x + b.x;
  let delta = b.y - a.y;
  return vec3<f32>(n, a.y + delta * (b.x / n), a.z + b.z + delta * delta * (a.x * (b.x / n)));
}

// (count, mean, m2) of set (a, b) from its rows' partials, by the corrected two-pass of
// row_stats one level up: every row holds S values, so the mean of the row means is the
// set's mean; take it once (mean0), then sum the rows' deviations d = mean_r - mean0 and
// add up m2 = sum_r (m2_r + S d^2) - M shift^2 with shift = mean(d). A sequential Welford
// or Chan merge would round its running mean at every row instead (for S = 1 and mean 1e4,
// ~5e-4 per step, growing with the set).
fn merge_set(a: u32, b: u32) -> vec3<f32> {
  let c0 = b * p.bc;
  let n0 = a * p.bn;
  let n1 = min(n0 + p.bn, p.n);
  let rows = f32((n1 - n0) * p.bc);
  var s0 = 0.0;
  for (var n = n0; n < n1; n++) {
    for (var k = 0u; k < p.bc; k++) { s0 += partial[n * p.c + c0 + k].x; }
  }
  let mean0 = s0 / rows;
  var s1 = 0.0;
  var s2 = 0.0;
  for (var n = n0; n < n1; n++) {
    for (var k = 0u; k < p.bc; k++) {
      let r = partial[n * p.c + c0 + k];
      let d = r.x - mean0;
      s1 += d;
      s2 += r.y + f32(p.s) * d * d;
    }
  }
  let shift = s1 / rows;
  let count = rows * f32(p.s);
  return vec3<f32>(count, mean0 + shift, max(s2 - count * shift * shift, 0.0));
}

@compute @workgroup_size(WG)
fn row_stats(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let r0 = thread_id(gid, nwg) * RUN;
  let chunks = (p.s + 3u) / 4u;
  let s = f32(p.s);
  for (var r = r0; r < min(r0 + RUN, p.rows); r++) {
    var s0 = vec4<f32>(0.0);
    for (var k = 0u; k < chunks; k++) { s0 += load_inp(r, k); }
    let mean0 = hsum(s0) / s;
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    for (var k = 0u; k < chunks; k++) {
      let d = masked(k, load_inp(r, k) - mean0);
      s1 += d;
      s2 += d * d;
    }
    let t1 = hsum(s1);
    stats_out[r] = vec2<f32>(mean0 + t1 / s, max(hsum(s2) - t1 * t1 / s, 0.0));
  }
}

@compute @workgroup_size(WG)
fn set_stats(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = thread_id(gid, nwg);
  let sets = p.ab * p.cb;
  if (id < sets) {
    let a = id / p.cb;
    let st = merge_set(a, id - a * p.cb);
    mean_out[id] = st.y;
    rstd_out[id] = 1.0 / sqrt(st.z / st.x + p.eps);
    return;
  }
  // TRACK: one thread per channel c (BC = 1, so the channel block of c is c itself).
  let c = id - sets;
  if (!TRACK || c >= p.c) { return; }
  var total = vec3<f32>(0.0);
  var within = 0.0;
  for (var a = 0u; a < p.ab; a++) {
    let st = merge_set(a, c);
    total = chan(total, st);
    within += st.z;
  }
  var f = p.factor;
  if (CUMULATIVE) { f = 1.0 / (batches_seen[0] + 1.0); }
  running_mean[c] = (1.0 - f) * running_mean[c] + f * total.y;
  running_var[c] = (1.0 - f) * running_var[c] + f * within / (total.x - f32(p.ab));
}

@compute @workgroup_size(1)
fn count_batch() {
  if (p.c == 0u) { return; } // (reads p: every entry point binds the uniform at 0)
  num_batches_tracked[0] += 1.0;
}

@compute @workgroup_size(WG)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let r0 = thread_id(gid, nwg) * RUN;
  if (r0 >= p.rows) { return; }
  let chunks = (p.s + 3u) / 4u;
  var w = walk_start(r0);
  for (var i = 0u; i < RUN && w.r < p.rows; i++) {
    let q = set_of(w);
    let mu = mean[q];
    var scale = rstd[q];
    var shift = 0.0;
    if (AFFINE) {
      scale *= weight[w.c];
      shift = bias[w.c];
    }
    for (var k = 0u; k < chunks; k++) { store_out(w.r, k, (load_inp(w.r, k) - mu) * scale + shift); }
    w = walk_next(w);
  }
}

@compute @workgroup_size(WG)
fn row_grads(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let r0 = thread_id(gid, nwg) * RUN;
  if (r0 >= p.rows) { return; }
  let chunks = (p.s + 3u) / 4u;
  var w = walk_start(r0);
  for (var i = 0u; i < RUN && w.r < p.rows; i++) {
    let q = set_of(w);
    let mu = mean[q];
    let rs = rstd[q];
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    for (var k = 0u; k < chunks; k++) {
      let dv = load_dout(w.r, k); // 0 past the row's end, so are the products
      s1 += dv;
      s2 += dv * (load_inp(w.r, k) - mu) * rs;
    }
    grads_out[w.r] = vec2<f32>(hsum(s1), hsum(s2));
    w = walk_next(w);
  }
}

@compute @workgroup_size(WG)
fn reduce_grads(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = thread_id(gid, nwg);
  let sets = p.ab * p.cb;
  if (id < sets) {
    let a = id / p.cb;
    let c0 = (id - a * p.cb) * p.bc;
    var sums = vec2<f32>(0.0); // (sum g, sum g xhat) over the set, g = dout * weight
    for (var n = a * p.bn; n < min(a * p.bn + p.bn, p.n); n++) {
      for (var c = c0; c < c0 + p.bc; c++) {
        var w = 1.0;
        if (AFFINE) { w = weight[c]; }
        sums += w * partial[n * p.c + c];
      }
    }
    coef_out[id] = sums / set_count(a);
    return;
  }
  let c = id - sets;
  if (!PARAM_GRADS || c >= p.c) { return; }
  var sums = vec2<f32>(0.0);
  // N times min(nwg.z, 1) = 1, which no compiler can know: Mesa 22.3's lavapipe substitutes
  // a uniform that bounds a loop with its value at the first dispatch and, where that shrinks
  // the shader (batch 16), recompiled this kernel at every later dispatch (about 5 ms each).
  let n_end = p.n * min(nwg.z, 1u);
  for (var n = 0u; n < n_end; n++) { sums += partial[n * p.c + c]; }
  dbias[c] = sums.x;
  dweight[c] = sums.y;
}

@compute @workgroup_size(WG)
fn backward_dinp(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let r0 = thread_id(gid, nwg) * RUN;
  if (r0 >= p.rows) { return; }
  let chunks = (p.s + 3u) / 4u;
  var w = walk_start(r0);
  for (var i = 0u; i < RUN && w.r < p.rows; i++) {
    let q = set_of(w);
    let mu = mean[q];
    let rs = rstd[q];
    let cf = coef[q];
    var wc = 1.0;
    if (AFFINE) { wc = weight[w.c]; }
    for (var k = 0u; k < chunks; k++) {
      let xhat = (load_inp(w.r, k) - mu) * rs;
      store_dinp(w.r, k, rs * (load_dout(w.r, k) * wc - cf.x - xhat * cf.y));
    }
    w = walk_next(w);
  }
}
