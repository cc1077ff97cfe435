// Batch normalization, training and inference, forward and backward, with an optional
// activation fused after it.
//
// The input is viewed as [N, C, S]: N examples, C channels, S = H*W (BatchNorm2d), L
// (BatchNorm1d on [N, C, L]) or 1 (BatchNorm1d on [N, C]); M = N*S values per channel.
// Per channel:
//
//   mean = (1/M) sum x                rstd = 1 / sqrt(var + eps)
//   var  = (1/M) sum (x - mean)^2     (biased; running_var gets var * M/(M-1))
//   xhat = (x - mean) * rstd          y    = xhat * weight + bias = (x - mean) * scale + bias
//   out  = act(y)                     (ACT: 0 none, 1 relu, 2 sigmoid)
//
//   g       = dout * act'(y)          (act' read off the saved out: relu out > 0,
//                                      sigmoid out * (1 - out))
//   dbias   = sum g                   dweight = sum g * xhat
//   dinp    = weight * rstd * (g - dbias/M - xhat * dweight/M)              (training)
//   dinp    = weight * rstd * g                                             (EVAL)
//
// Work is cut into units, each owned by TPR threads (TPR = 1 on CPU adapters: no
// barriers; 32-64 on GPUs). A unit is a block of NB consecutive examples of one channel
// group, and a thread walks the unit's items:
//
//   rows    (COLUMNS = false): the group is one channel c; an example's items are its S
//           values of c, contiguous (vec4 items when VEC, i.e. S % 4 == 0). The channel is
//           the same for the whole unit, so its coefficients are loaded once per thread,
//           not once per element (an integer division and four gathers per vec4 made the
//           previous kernel 10x slower than LayerNorm on llvmpipe).
//   columns (COLUMNS = true, S == 1, C % 4 == 0): the group is 4 channels 4q..4q+3, one
//           vec4 per example: BatchNorm1d on [N, C] reads whole vec4s along C.
//
// Item j of a unit is (example n0 + j / SEG, k = j % SEG) at index
// n * ROW_STRIDE + g * SEG + k (in vec4s when VEC, in floats otherwise); the walk steps
// j by TPR without dividing. Every statistic is kept per vec4 lane and the lanes are
// combined at the end (rows: 4 pieces of one channel; columns: 4 channels).
//
// Statistics: each thread sums d = x - K and d^2 over its items, with K the channel's first
// value (a sample of the data, the same for every thread of the channel). Then the
// thread's mean is K + sum d / n and m2 = sum d^2 - (sum d)^2 / n; the cancellation in m2
// is at most (mean - K)^2 / var <= n (Samuelson's inequality), so the relative error of m2
// stays near n * 2^-24 however large |mean| / std is, where E[x^2] - E[x]^2 loses every
// digit at |mean| / std = 1e4. Threads, lanes and units are then merged with Chan's formula
// for (count, mean - K, m2): the means stay relative to K, small, so that merging them
// loses nothing to the rounding of a large |mean|, and K is added once, at the end (the
// mean is then within half a float32 ulp of the exact one).
//
// Entry points, all launched back to back without host waits:
//
//   unit_stats     per unit: (count, mean - K, m2, K) per channel -> partial[block * C + c]
//   stats_finalize per channel: Chan-merges its blocks' partials into mean and rstd,
//                  updates running_mean/var (TRACK), writes stats[c]; with COUNT, channel
//                  0's thread adds 1 to num_batches_tracked (nothing else reads it then)
//   count_batch    one thread: num_batches_tracked += 1, after stats_finalize read it
//                  (CUMULATIVE: every channel reads the count, so it is added afterwards)
//   eval_stats     per channel: stats[c] from running_mean and running_var
//   normalize      per unit: out = act((x - mean) * scale + bias)
//   grad_partial   per unit: (sum g, sum g * (x - mean)) -> partial[block * C + c]
//   grad_finalize  per channel: dweight, dbias, and coef[c] for grad_inp
//   grad_inp       per unit: dinp = a * (g - m1) - b * (x - mean)
//
// When a unit holds all N examples of its channels (one block), its statistics are final
// where unit_stats ends, and two fused entry points do each direction in one launch (the
// small batches, where every launch's fixed cost dominates):
//
//   forward_fused  per unit: unit_stats's walk and tree; the unit's first thread finishes
//                  the statistics (stats_finalize's work, COUNT included), shares them in
//                  workgroup memory, then every thread normalizes its items (not with
//                  NORMALIZE false: the statistics alone, for a pass that reads them, as
//                  pool.wgsl's pool2_forward with NORM)
//   backward_fused per unit: grad_partial's walk and tree; the first thread writes
//                  dweight, dbias and the coefficients, then every thread writes its dinp
//   backward_pooled backward_fused for batch norm, an activation and a 2x2 max pool, from
//                  the pool's output gradient (see its section at the end)
//
// The per-channel caches: stats[c] = (mean, rstd, scale, bias), scale = weight * rstd (the
// forward's normalization, saved for the backward; x - mean is formed before scaling, so
// that a channel whose |mean| >> std keeps its digits, which x * scale + (bias - mean *
// scale) would cancel away);
// coef[c] = (mean, a, m1, b) with a = weight * rstd, and in training m1 = dbias / M,
// b = a * rstd * dweight / M (zero in eval).
//
// Bindings (0 is always the uniform params):
//   unit_stats:     1 inp, 2 partial (out)
//   stats_finalize: 1 running_mean, 2 running_var, 3 weight, 4 bias, 5 stats (out), 6 partial,
//                   7 num_batches_tracked (read with CUMULATIVE: the k-th batch's update
//                   weight is 1/k, k = num_batches_tracked + 1, PyTorch's momentum=None;
//                   incremented with COUNT)
//   count_batch:    1 num_batches_tracked (in/out)
//   eval_stats:     1 running_mean, 2 running_var, 3 weight, 4 bias, 5 stats (out)
//   normalize:      1 inp, 2 stats, 3 out
//   grad_partial:   1 inp, 2 stats, 3 out, 4 dout, 5 partial (out)
//   grad_finalize:  1 partial, 2 stats, 3 weight, 4 dweight (out), 5 dbias (out), 6 coef (out)
//   grad_inp:       1 inp, 2 coef, 3 out, 4 dout, 5 dinp (out)
//   forward_fused:  1 inp, 2 running_var, 3 out, 4 bias, 5 stats (out), 6 running_mean,
//                   7 weight, 8 num_batches_tracked (in/out)
//   backward_fused: 1 inp, 2 stats, 3 out, 4 dout, 5 dinp, 6 dweight, 8 dbias
// With AFFINE = 0, weight/bias/dweight/dbias are placeholders (weight 1, bias 0); without
// ACT, out in the backward is a placeholder. Every array is f32, bound as vec4s (stats
// and coef hold one vec4 per channel, partial one per (block, channel)).
// Dispatch: per-unit passes ceil(units / (WG / TPR)) workgroups, per-channel passes
// ceil(C / WG); both split over x and y (linear id = x + y * num_workgroups.x).

override WG: u32 = 64u;       // threads per workgroup
override TPR: u32 = 1u;       // threads per unit, a power of two dividing WG
override VEC: bool = true;    // items are vec4s; otherwise single floats (lane 0 only)
override COLUMNS: bool = false;
override AFFINE: bool = true;
override TRACK: bool = false; // stats_finalize updates the running statistics
override CUMULATIVE: bool = false; // ... with weight 1/k (the cumulative average)
override COUNT: bool = false; // stats_finalize / forward_fused: num_batches_tracked += 1
override DINP: bool = true;   // backward_fused: write dinp (else only dweight and dbias)
override NORMALIZE: bool = true; // forward_fused: write out (else only the statistics)
override EVAL: bool = false;  // grad_finalize: the statistics were constants
override ACT: u32 = 0u;       // 0 none, 1 relu, 2 sigmoid

struct Params {
  c: u32,          // C
  groups: u32,     // G: channel groups, C (rows) or C / 4 (columns)
  units: u32,      // blocks * G
  n: u32,          // N
  nb: u32,         // NB: examples per block
  seg: u32,        // SEG: items per example in a unit (S / 4 or S for rows, 1 for columns)
  row_stride: u32, // items from one example to the next (C * SEG rows, C / 4 columns)
  blocks: u32,     // ceil(N / NB)
  m: f32,          // M = N * S
  eps: f32,
  factor: f32,     // running = (1 - factor) * running + factor * batch
}

@group(0) @binding(0) var<uniform> p: Params;

// per-unit passes
@group(0) @binding(1) var<storage, read> inp: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partial_out: array<vec4<f32>>; // unit_stats
@group(0) @binding(2) var<storage, read> stats: array<vec4<f32>>; // normalize, grad_partial
@group(0) @binding(2) var<storage, read> coef: array<vec4<f32>>;  // grad_inp
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>; // normalize
@group(0) @binding(3) var<storage, read> saved_out: array<vec4<f32>>; // backward (read if ACT)
@group(0) @binding(4) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> grad_partial_out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dinp: array<vec4<f32>>;
// per-channel passes
@group(0) @binding(1) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats_out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> partial: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> batches_seen: array<f32>; // stats_finalize
@group(0) @binding(1) var<storage, read_write> num_batches_tracked: array<f32>; // count_batch
@group(0) @binding(1) var<storage, read> grad_sums: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(6) var<storage, read_write> coef_out: array<vec4<f32>>;
// fused passes (others at the numbers of the passes above)
@group(0) @binding(6) var<storage, read_write> running_mean_f: array<f32>; // forward_fused
@group(0) @binding(7) var<storage, read> weight_f: array<f32>;
@group(0) @binding(8) var<storage, read_write> count_f: array<f32>;        // forward_fused
@group(0) @binding(6) var<storage, read_write> dweight_f: array<f32>;      // backward_fused
@group(0) @binding(8) var<storage, read_write> dbias_f: array<f32>;        // backward_fused

// Per-thread partial results for the tree over a unit's TPR threads (TPR > 1 only).
// Workgroup scratch for the trees, shared by two passes: the statistics pass merges
// (count, mean, m2) in (w_n, w_s1, w_s2); grad_partial sums (g, g * (x - mean)) in (w_s1, w_s2).
var<workgroup> w_n: array<vec4<f32>, WG>;
var<workgroup> w_s1: array<vec4<f32>, WG>;
var<workgroup> w_s2: array<vec4<f32>, WG>;

// ---------------------------------------------------------------------------------------
// Units and their walk.

struct Unit {
  g: u32,       // channel group: the channel (rows) or channel quad (columns)
  n0: u32,      // first example of the block
  len: u32,     // items in the unit (0 for threads past the last unit)
  t: u32,       // this thread's rank among the unit's TPR threads
  block: u32,
}

fn unit_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Unit {
  let u = (wid.x + wid.y * nwg.x) * (WG / TPR) + lid / TPR;
  let block = u / p.groups;
  let n0 = block * p.nb;
  let rows = min(p.nb, p.n - min(n0, p.n));
  return Unit(u - block * p.groups, n0, select(0u, rows * p.seg, u < p.units), lid % TPR, block);
}

// Position of the walk: item j of the unit sits at example n, offset k.
struct Walk { n: u32, k: u32 }

fn walk_start(u: Unit) -> Walk {
  return Walk(u.n0 + u.t / p.seg, u.t % p.seg);
}

// j += TPR, as (n, k) += (TPR / SEG, TPR % SEG) with one carry (TPR % SEG < SEG).
fn walk_next(w: Walk) -> Walk {
  var k = w.k + TPR % p.seg;
  var n = w.n + TPR / p.seg;
  if (k >= p.seg) { k -= p.seg; n += 1u; }
  return Walk(n, k);
}

fn index(u: Unit, w: Walk) -> u32 {
  return w.n * p.row_stride + u.g * p.seg + w.k;
}

// An item of a buffer: a vec4, or one float in lane 0 (lanes 1-3 zero).
fn item_inp(i: u32) -> vec4<f32> {
  if (VEC) { return inp[i]; }
  return vec4<f32>(inp[i >> 2u][i & 3u], 0.0, 0.0, 0.0);
}

fn item_dout(i: u32) -> vec4<f32> {
  if (VEC) { return dout[i]; }
  return vec4<f32>(dout[i >> 2u][i & 3u], 0.0, 0.0, 0.0);
}

fn item_saved_out(i: u32) -> vec4<f32> {
  if (VEC) { return saved_out[i]; }
  return vec4<f32>(saved_out[i >> 2u][i & 3u], 0.0, 0.0, 0.0);
}

// How many values one lane holds after `items` items: all lanes with VEC, lane 0 otherwise.
fn lane_count(items: u32) -> vec4<f32> {
  if (VEC) { return vec4<f32>(f32(items)); }
  return vec4<f32>(f32(items), 0.0, 0.0, 0.0);
}

// Component `which` of a per-channel table entry, for each lane of a unit: channel g in
// every lane (rows), or channels 4g .. 4g+3 (columns).
fn stats_lanes(g: u32, which: u32) -> vec4<f32> {
  if (COLUMNS) {
    return vec4<f32>(stats[4u * g][which], stats[4u * g + 1u][which],
                     stats[4u * g + 2u][which], stats[4u * g + 3u][which]);
  }
  return vec4<f32>(stats[g][which]);
}

// coef of each lane's channel, transposed: [mean, a, m1, b], each a vec4 over lanes.
fn coef_lanes(g: u32) -> array<vec4<f32>, 4> {
  if (COLUMNS) {
    let e = array<vec4<f32>, 4>(coef[4u * g], coef[4u * g + 1u], coef[4u * g + 2u],
                                coef[4u * g + 3u]);
    return array<vec4<f32>, 4>(vec4<f32>(e[0].x, e[1].x, e[2].x, e[3].x),
                               vec4<f32>(e[0].y, e[1].y, e[2].y, e[3].y),
                               vec4<f32>(e[0].z, e[1].z, e[2].z, e[3].z),
                               vec4<f32>(e[0].w, e[1].w, e[2].w, e[3].w));
  }
  let e = coef[g];
  return array<vec4<f32>, 4>(vec4<f32>(e.x), vec4<f32>(e.y), vec4<f32>(e.z), vec4<f32>(e.w));
}

// ---------------------------------------------------------------------------------------
// Chan's merge of (count, mean, m2), per lane. Exact in real arithmetic; in float32 its
// error does not grow with |mean| / std. Empty sides (count 0) pass the other through.

struct Stats { n: vec4<f32>, mean: vec4<f32>, m2: vec4<f32> }

fn chan(a: Stats, b: Stats) -> Stats {
  let n = a.n + b.n;
  let fb = select(b.n / n, vec4<f32>(0.0), n == vec4<f32>(0.0));
  let delta = b.mean - a.mean;
  return Stats(n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * a.n * fb);
}

fn chan1(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  let n = a.x + b.x;
  if (b.x == 0.0) { return a; }
  let delta = b.y - a.y;
  return vec3<f32>(n, a.y + delta * (b.x / n), a.z + b.z + delta * delta * (a.x * b.x / n));
}

fn lane(s: Stats, j: u32) -> vec3<f32> {
  return vec3<f32>(s.n[j], s.mean[j], s.m2[j]);
}

// Merges the TPR threads' values of each unit into its first thread (a tree in workgroup
// memory). Must be reached by every thread of the workgroup.
fn tree_stats(s: Stats, lid: u32) -> Stats {
  var r = s;
  if (TPR > 1u) {
    w_n[lid] = s.n;
    w_s1[lid] = s.mean;
    w_s2[lid] = s.m2;
    workgroupBarrier();
    for (var h = TPR / 2u; h > 0u; h >>= 1u) {
      if (lid % TPR < h) {
        r = chan(r, Stats(w_n[lid + h], w_s1[lid + h], w_s2[lid + h]));
        w_n[lid] = r.n;
        w_s1[lid] = r.mean;
        w_s2[lid] = r.m2;
      }
      workgroupBarrier();
    }
  }
  return r;
}

fn tree_sums(a: vec4<f32>, b: vec4<f32>, lid: u32) -> array<vec4<f32>, 2> {
  var r = array<vec4<f32>, 2>(a, b);
  if (TPR > 1u) {
    w_s1[lid] = a;
    w_s2[lid] = b;
    workgroupBarrier();
    for (var h = TPR / 2u; h > 0u; h >>= 1u) {
      if (lid % TPR < h) {
        r[0] += w_s1[lid + h];
        r[1] += w_s2[lid + h];
        w_s1[lid] = r[0];
        w_s2[lid] = r[1];
      }
      workgroupBarrier();
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------
// Forward.

// K of each lane: the channel's first value (example 0), in every lane for rows (one
// channel), per lane for columns (4 channels).
fn channel_shift(g: u32) -> vec4<f32> {
  let first = item_inp(g * p.seg);
  if (COLUMNS) { return first; }
  return vec4<f32>(first.x);
}

// The unit's (count, mean - K, m2) per lane, merged over its TPR threads into its first
// thread (the tree's barriers: every thread of the workgroup must call it).
fn walk_stats(u: Unit, shift: vec4<f32>, lid: u32) -> Stats {
  var s1 = vec4<f32>(0.0);
  var s2 = vec4<f32>(0.0);
  var items = 0u;
  var w = walk_start(u);
  for (var j = u.t; j < u.len; j += TPR) {
    let d = item_inp(index(u, w)) - shift;
    s1 += d;
    s2 += d * d;
    items++;
    w = walk_next(w);
  }
  let cnt = lane_count(items);
  let safe = max(cnt, vec4<f32>(1.0));
  return tree_stats(Stats(cnt, s1 / safe, s2 - s1 * s1 / safe), lid); // mean relative to K
}

@compute @workgroup_size(WG)
fn unit_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let u = unit_of(wid, nwg, lid);
  // K: the channel's first value, shared by every thread of the channel (see the header).
  let shift = channel_shift(u.g);
  let s = walk_stats(u, shift, lid);
  if (u.t != 0u || u.len == 0u) { return; }
  if (COLUMNS) {
    for (var j = 0u; j < 4u; j++) {
      partial_out[u.block * p.c + 4u * u.g + j] = vec4<f32>(lane(s, j), shift[j]);
    }
  } else {
    let c01 = chan1(lane(s, 0u), lane(s, 1u));
    let c23 = chan1(lane(s, 2u), lane(s, 3u));
    partial_out[u.block * p.c + u.g] = vec4<f32>(chan1(c01, c23), shift.x);
  }
}

// stats[c] = (mean, rstd, scale, bias) from the mean and biased variance of channel c.
fn write_stats(c: u32, mean: f32, var_: f32) {
  let rstd = inverseSqrt(var_ + p.eps);
  var scale = rstd;
  var b = 0.0;
  if (AFFINE) {
    scale = weight[c] * rstd;
    b = bias[c];
  }
  stats_out[c] = vec4<f32>(mean, rstd, scale, b);
}

@compute @workgroup_size(WG)
fn stats_finalize(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.c) { return; }
  var acc = vec3<f32>(0.0);
  for (var b = 0u; b < p.blocks; b++) { acc = chan1(acc, partial[b * p.c + c].xyz); }
  let mean = partial[c].w + acc.y; // K + the mean relative to it, rounded once
  write_stats(c, mean, acc.z / p.m);
  if (TRACK) {
    var f = p.factor;
    if (CUMULATIVE) { f = 1.0 / (batches_seen[0] + 1.0); }
    running_mean[c] = (1.0 - f) * running_mean[c] + f * mean;
    running_var[c] = (1.0 - f) * running_var[c] + f * acc.z / (p.m - 1.0);
  }
  if (COUNT && c == 0u) { batches_seen[0] += 1.0; }
}

@compute @workgroup_size(1)
fn count_batch() {
  if (p.c == 0u) { return; } // (reads p: every entry point binds the uniform at 0)
  num_batches_tracked[0] += 1.0;
}

@compute @workgroup_size(WG)
fn eval_stats(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.c) { return; }
  write_stats(c, running_mean[c], running_var[c]);
}

fn activate(y: vec4<f32>) -> vec4<f32> {
  if (ACT == 1u) { return max(y, vec4<f32>(0.0)); }
  if (ACT == 2u) { return 1.0 / (1.0 + exp(-y)); }
  return y;
}

@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let u = unit_of(wid, nwg, lid);
  if (u.t >= u.len) { return; }
  walk_normalize(u, stats_lanes(u.g, 0u), stats_lanes(u.g, 2u), stats_lanes(u.g, 3u));
}

// out = act((x - mean) * scale + b) over the thread's items of the unit.
fn walk_normalize(u: Unit, mean: vec4<f32>, scale: vec4<f32>, b: vec4<f32>) {
  var w = walk_start(u);
  for (var j = u.t; j < u.len; j += TPR) {
    let i = index(u, w);
    let y = activate((item_inp(i) - mean) * scale + b);
    if (VEC) { out[i] = y; } else { out[i >> 2u][i & 3u] = y.x; }
    w = walk_next(w);
  }
}

// ---------------------------------------------------------------------------------------
// Backward.

// g = dout * act'(y), with act' read off the saved output.
fn grad_at(i: u32) -> vec4<f32> {
  let d = item_dout(i);
  if (ACT == 1u) { return select(vec4<f32>(0.0), d, item_saved_out(i) > vec4<f32>(0.0)); }
  if (ACT == 2u) { let s = item_saved_out(i); return d * s * (1.0 - s); }
  return d;
}

// The unit's (sum g, sum g * (x - mean)) per lane, merged over its TPR threads into its first
// thread (the tree's barriers: every thread of the workgroup must call it).
fn walk_grad_sums(u: Unit, lid: u32) -> array<vec4<f32>, 2> {
  var sum_g = vec4<f32>(0.0);
  var sum_gx = vec4<f32>(0.0);
  if (u.t < u.len) {
    let mean = stats_lanes(u.g, 0u);
    var w = walk_start(u);
    for (var j = u.t; j < u.len; j += TPR) {
      let i = index(u, w);
      let g = grad_at(i);
      sum_g += g;
      sum_gx += g * (item_inp(i) - mean);
      w = walk_next(w);
    }
  }
  return tree_sums(sum_g, sum_gx, lid);
}

@compute @workgroup_size(WG)
fn grad_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let u = unit_of(wid, nwg, lid);
  let s = walk_grad_sums(u, lid);
  if (u.t != 0u || u.len == 0u) { return; }
  if (COLUMNS) {
    for (var j = 0u; j < 4u; j++) {
      grad_partial_out[u.block * p.c + 4u * u.g + j] = vec4<f32>(s[0][j], s[1][j], 0.0, 0.0);
    }
  } else {
    let one = vec4<f32>(1.0);
    grad_partial_out[u.block * p.c + u.g] = vec4<f32>(dot(s[0], one), dot(s[1], one), 0.0, 0.0);
  }
}

@compute @workgroup_size(WG)
fn grad_finalize(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.c) { return; }
  var sums = vec2<f32>(0.0);
  for (var b = 0u; b < p.blocks; b++) { sums += grad_sums[b * p.c + c].xy; }
  let st = stats[c];
  let db = sums.x;
  let dw = sums.y * st.y; // sum g * xhat = rstd * sum g * (x - mean)
  var a = st.y;
  if (AFFINE) {
    a = weight[c] * st.y;
    dbias[c] = db;
    dweight[c] = dw;
  }
  if (EVAL) { coef_out[c] = vec4<f32>(st.x, a, 0.0, 0.0); }
  else { coef_out[c] = vec4<f32>(st.x, a, db / p.m, a * st.y * dw / p.m); }
}

@compute @workgroup_size(WG)
fn grad_inp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let u = unit_of(wid, nwg, lid);
  if (u.t >= u.len) { return; }
  walk_dinp(u, coef_lanes(u.g));
}

// dinp = a (g - m1) - b (x - mean) over the thread's items of the unit; k = [mean, a, m1, b],
// each a vec4 over lanes.
fn walk_dinp(u: Unit, k: array<vec4<f32>, 4>) {
  var w = walk_start(u);
  for (var j = u.t; j < u.len; j += TPR) {
    let i = index(u, w);
    let d = k[1] * (grad_at(i) - k[2]) - k[3] * (item_inp(i) - k[0]);
    if (VEC) { dinp[i] = d; } else { dinp[i >> 2u][i & 3u] = d.x; }
    w = walk_next(w);
  }
}

// ---------------------------------------------------------------------------------------
// Fused passes, for a layout of one block (every unit holds all N examples of its channels).

// A unit's coefficients, per lane, as its first thread leaves them for the others in
// workgroup memory at its own slot: forward (mean, scale, bias) in w_s1, w_s2, w_k; backward
// (mean, a, m1, b) in w_n, w_s1, w_s2, w_k.
var<workgroup> w_k: array<vec4<f32>, WG>;

// running = (1 - f) running + f batch for channel c, from its mean and m2 (as stats_finalize:
// the unbiased variance m2 / (M - 1)); f is p.factor, or 1/k (CUMULATIVE).
fn update_running(c: u32, mean: f32, m2: f32, f: f32) {
  running_mean_f[c] = (1.0 - f) * running_mean_f[c] + f * mean;
  running_var[c] = (1.0 - f) * running_var[c] + f * m2 / (p.m - 1.0);
}

// stats[c] = (mean, rstd, scale, bias) from a channel's biased variance, with the fused
// pass's weight binding; returns it.
fn fused_stats(c: u32, mean: f32, var_: f32) -> vec4<f32> {
  let rstd = inverseSqrt(var_ + p.eps);
  var st = vec4<f32>(mean, rstd, rstd, 0.0);
  if (AFFINE) { st = vec4<f32>(mean, rstd, weight_f[c] * rstd, bias[c]); }
  stats_out[c] = st;
  return st;
}

@compute @workgroup_size(WG)
fn forward_fused(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let u = unit_of(wid, nwg, lid);
  let shift = channel_shift(u.g);
  let s = walk_stats(u, shift, lid);
  let lead = lid - u.t; // the unit's first thread
  if (u.t == 0u && u.len > 0u) {
    var f = p.factor;
    if (CUMULATIVE) { f = 1.0 / (count_f[0] + 1.0); }
    // (mean, scale, bias) per lane: 4 channels (columns), or lane 0's channel in all four
    var mean = vec4<f32>(0.0);
    var scale = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    if (COLUMNS) {
      for (var j = 0u; j < 4u; j++) {
        let c = 4u * u.g + j;
        let m = lane(s, j);
        let st = fused_stats(c, shift[j] + m.y, m.z / p.m);
        if (TRACK) { update_running(c, st.x, m.z, f); }
        mean[j] = st.x;
        scale[j] = st.z;
        b[j] = st.w;
      }
    } else {
      let m = chan1(chan1(lane(s, 0u), lane(s, 1u)), chan1(lane(s, 2u), lane(s, 3u)));
      let st = fused_stats(u.g, shift.x + m.y, m.z / p.m);
      if (TRACK) { update_running(u.g, st.x, m.z, f); }
      mean = vec4<f32>(st.x);
      scale = vec4<f32>(st.z);
      b = vec4<f32>(st.w);
    }
    w_s1[lead] = mean;
    w_s2[lead] = scale;
    w_k[lead] = b;
    if (COUNT && u.g == 0u) { count_f[0] += 1.0; }
  }
  workgroupBarrier();
  if (u.t >= u.len || !NORMALIZE) { return; }
  walk_normalize(u, w_s1[lead], w_s2[lead], w_k[lead]);
}

// coef for channel c from its sums (as grad_finalize), writing dweight and dbias. a =
// weight * rstd is stats' scale, as the forward computed it (rstd alone without AFFINE).
fn fused_coef(c: u32, sum_g: f32, sum_gx: f32) -> vec4<f32> {
  let st = stats[c];
  let dw = sum_gx * st.y; // sum g * xhat = rstd * sum g * (x - mean)
  if (AFFINE) {
    dbias_f[c] = sum_g;
    dweight_f[c] = dw;
  }
  if (EVAL) { return vec4<f32>(st.x, st.z, 0.0, 0.0); }
  return vec4<f32>(st.x, st.z, sum_g / p.m, st.z * st.y * dw / p.m);
}

@compute @workgroup_size(WG)
fn backward_fused(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let u = unit_of(wid, nwg, lid);
  let s = walk_grad_sums(u, lid);
  // the tree leaves w_s1 and w_s2 in use until every thread has passed its last barrier
  workgroupBarrier();
  let lead = lid - u.t;
  if (u.t == 0u && u.len > 0u) {
    // coef per lane, transposed as coef_lanes gives it: [mean, a, m1, b]
    var k = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    if (COLUMNS) {
      for (var j = 0u; j < 4u; j++) {
        let e = fused_coef(4u * u.g + j, s[0][j], s[1][j]);
        k[0][j] = e.x;
        k[1][j] = e.y;
        k[2][j] = e.z;
        k[3][j] = e.w;
      }
    } else {
      let one = vec4<f32>(1.0);
      let e = fused_coef(u.g, dot(s[0], one), dot(s[1], one));
      k = array<vec4<f32>, 4>(vec4<f32>(e.x), vec4<f32>(e.y), vec4<f32>(e.z), vec4<f32>(e.w));
    }
    w_n[lead] = k[0];
    w_s1[lead] = k[1];
    w_s2[lead] = k[2];
    w_k[lead] = k[3];
  }
  workgroupBarrier();
  if (!DINP || u.t >= u.len) { return; }
  walk_dinp(u, array<vec4<f32>, 4>(w_n[lead], w_s1[lead], w_s2[lead], w_k[lead]));
}

// ---------------------------------------------------------------------------------------
// Batch norm, an activation and a 2x2 max pool (stride 2, W % 4 == 0: pool.wgsl's pool2),
// backward in one launch, for a layout of one block of rows of vec4s. The pool's output
// gradient dres [N, C, OH, OW] reaches the normalized values only at each window's winner
// (idx [N, C, OH, OW] from pool2_forward, iy * W + ix within the plane), through the
// activation's derivative read off the pooled output. So the sums walk the pooled values (a
// quarter of the items), reading x only at the winners; then dinp walks the items, each
// vec4 of a row taking its two windows' g where it won. The full-size gradient that the
// pool's backward wrote, and batch norm's backward then read twice, is never formed.
//
// Bindings: 1 inp, 2 stats, 3 pooled (read when POOL_ACT), 4 dres, 5 dinp, 6 dweight,
// 7 idx, 8 dbias: 8 storage buffers, WebGPU's default limit (fused_coef needs no weight).

override POOL_ACT: u32 = 0u; // the activation between batch norm and the pool (as ACT)
override W4: u32 = 1u;       // W / 4: items per input row, and vec2s per pooled row
override PSEG: u32 = 1u;     // OH * W / 4: a plane's pooled vec2s (constants: divided by)

@group(0) @binding(3) var<storage, read> pooled2: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> dres2: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read> won2: array<vec2<u32>>;

// The gradient of the normalized values at the winners of pooled vec2 `pi`: dres through
// the activation's derivative (as pool.wgsl's through_activation).
fn pooled_grad(pi: u32) -> vec2<f32> {
  let d = dres2[pi];
  if (POOL_ACT == 1u) { return select(vec2<f32>(0.0), d, pooled2[pi] > vec2<f32>(0.0)); }
  if (POOL_ACT == 2u) { let y = pooled2[pi]; return d * y * (1.0 - y); }
  return d;
}

@compute @workgroup_size(WG)
fn backward_pooled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let u = unit_of(wid, nwg, lid);
  var sum_g = vec2<f32>(0.0);
  var sum_gx = vec2<f32>(0.0);
  if (u.len > 0u) {
    let mean = stats[u.g].x;
    for (var j = u.t; j < p.n * PSEG; j += TPR) {
      let n = j / PSEG;
      let plane = n * p.c + u.g;
      let pi = plane * PSEG + (j - n * PSEG);
      let g = pooled_grad(pi);
      let won = won2[pi] + vec2<u32>(plane * p.seg * 4u); // the winners' flat indices
      let x = vec2<f32>(inp[won.x >> 2u][won.x & 3u], inp[won.y >> 2u][won.y & 3u]);
      sum_g += g;
      sum_gx += g * (x - mean);
    }
  }
  let s = tree_sums(vec4<f32>(sum_g, 0.0, 0.0), vec4<f32>(sum_gx, 0.0, 0.0), lid);
  // the tree leaves w_s1 and w_s2 in use until every thread has passed its last barrier
  workgroupBarrier();
  let lead = lid - u.t;
  if (u.t == 0u && u.len > 0u) {
    let e = fused_coef(u.g, s[0].x + s[0].y, s[1].x + s[1].y);
    w_n[lead] = vec4<f32>(e.x);
    w_s1[lead] = vec4<f32>(e.y);
    w_s2[lead] = vec4<f32>(e.z);
    w_k[lead] = vec4<f32>(e.w);
  }
  workgroupBarrier();
  if (!DINP || u.t >= u.len) { return; }
  let k = array<vec4<f32>, 4>(w_n[lead], w_s1[lead], w_s2[lead], w_k[lead]); // mean, a, m1, b
  let oh = PSEG / W4;
  var w = walk_start(u);
  for (var j = u.t; j < u.len; j += TPR) {
    let i = index(u, w);
    // the item's row h and vec4 q in it: its values are columns 4q .. 4q + 3, under windows
    // 2q and 2q + 1 of pooled row h / 2 (pooled vec2 q of that row); a value gets its
    // window's g where it won. (A last row under no window, for odd H, reads pooled row
    // OH - 1, whose winners are in the rows above: it gets none.)
    let h = w.k / W4;
    let pi = ((w.n * p.c + u.g) * oh + min(h / 2u, oh - 1u)) * W4 + (w.k - h * W4);
    let g = pooled_grad(pi);
    let at = vec4<u32>(4u * w.k) + vec4<u32>(0u, 1u, 2u, 3u); // iy * W + ix of each value
    let won = won2[pi];
    let dg = select(vec4<f32>(0.0), vec4<f32>(g.xx, g.yy), vec4<u32>(won.xx, won.yy) == at);
    dinp[i] = k[1] * (dg - k[2]) - k[3] * (inp[i] - k[0]);
    w = walk_next(w);
  }
}
