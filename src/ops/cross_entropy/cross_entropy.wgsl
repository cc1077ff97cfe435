// Softmax cross-entropy over class logits, fused and numerically stable, and a count of
// correct predictions, for a batch of N rows of C classes:
//
//   forward         lse[n] = max_c inp[n, c] + log sum_c exp(inp[n, c] - max_c inp[n, c])
//                   out    = (1 / M) sum_n (lse[n] - inp[n, target[n]])        (mean loss)
//   backward        dinp[n, c] = dout * (exp(inp[n, c] - lse[n]) - [c == target[n]]) / M
//   where the sums and M (the rows counted) leave out rows whose target is `ignore`
//   (their dinp is 0): PyTorch's ignore_index.
//                   (with SAVE_GRAD, forward writes it for dout = 1 into grad [N, C]: a
//                   backward seeded by loss.backward() then copies it, with no launch)
//   count_correct   out = #{ n : argmax_c inp[n, c] == target[n] }  (first max on ties)
//
// `target` holds class indices as f32 (what the data loader yields). A target that is not
// an integer in [0, C) makes the loss NaN (a GPU kernel cannot throw; NaN cannot be missed),
// and the forward writes the first such row and its target to `check` [2] ([-1, 0] if none),
// which the host reads with the loss (cross_entropy.ts), so that the error can name it; it
// also keeps 1 / M there (check[2]) for the backward.
//
// Thread-to-data mapping: forward and count_correct run as ONE workgroup of WG threads;
// thread t handles rows t, t + WG, ... (a row is C contiguous floats), keeps its partial sum
// in a register, and the workgroup adds the WG partials with a tree in workgroup memory.
// One workgroup is enough: N * C is small (256 x 10 per training step) and a single pass
// gives a deterministic sum with no second dispatch. The forward saves lse [N] for the
// backward. backward: one thread per element of dinp.
//
// Bindings: 0 params (uniform), 1 inp [N, C], 2 targets [N], then
//   forward: 3 out [1], 4 lse [N], 5 grad [N, C] (written with SAVE_GRAD), 6 check [3];
//   backward: 3 dout [1], 4 lse [N], 5 dinp [N, C], 6 check [3] (read: 1 / M);
//   count_correct: 3 out [1].
// Dispatch: forward and count_correct [1]; backward ceil(N C / WG) split over x and y.

override WG: u32 = 256u;
override SAVE_GRAD: bool = false; // forward: write the gradient for dout = 1

struct Params {
  n: u32,      // rows
  c: u32,      // classes
  ignore: f32, // a target equal to it is skipped (PyTorch's ignore_index, default -100)
}

// NaN's bits, read at run time: a constant expression that yields NaN (or an infinity) is a
// shader-creation error in WGSL (Tint refuses `bitcast<f32>(0x7fc00000u)`; naga allows it).
var<private> NAN_BITS: u32 = 0x7fc00000u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>; // (`target` is reserved)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(6) var<storage, read_write> check: array<f32>; // forward only

var<workgroup> partial: array<f32, WG>;

// The target class of row n, or C when it is not a valid class index.
// A row's class, or p.c for an invalid target, or p.c + 1 for an ignored one.
fn class_of(n: u32) -> u32 {
  let t = targets[n];
  if (t == p.ignore) { return p.c + 1u; }
  if (t >= 0.0 && t < f32(p.c) && fract(t) == 0.0) { return u32(t); }
  return p.c;
}

// Adds up `partial` across the workgroup; every thread must call it.
// The smallest of the WG threads' v (each thread's first bad row, or N for none).
fn workgroup_min(t: u32, v: f32) -> f32 {
  workgroupBarrier(); // every thread has read the previous reduction's partial[0]
  partial[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { partial[t] = min(partial[t], partial[t + s]); }
    workgroupBarrier();
  }
  return partial[0];
}

fn workgroup_sum(t: u32, v: f32) -> f32 {
  partial[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { partial[t] += partial[t + s]; }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(WG)
fn forward(@builtin(local_invocation_index) t: u32) {
  // The mean is over the rows not ignored: count them first (their targets only).
  var counted = 0.0;
  for (var n = t; n < p.n; n += WG) {
    if (class_of(n) != p.c + 1u) { counted += 1.0; }
  }
  let m = workgroup_sum(t, counted);
  // Every row ignored: the mean of nothing is NaN, as PyTorch's (no division by zero in WGSL).
  let inv_n = select(bitcast<f32>(NAN_BITS), 1.0 / m, m > 0.0);
  var acc = 0.0;
  var bad = f32(p.n); // this thread's first row with an invalid target (rows increase)
  for (var n = t; n < p.n; n += WG) {
    let row = n * p.c;
    var m = inp[row];
    for (var c = 1u; c < p.c; c++) { m = max(m, inp[row + c]); }
    var s = 0.0;
    for (var c = 0u; c < p.c; c++) { s += exp(inp[row + c] - m); }
    let l = m + log(s);
    lse[n] = l;
    let k = class_of(n);
    if (SAVE_GRAD) {
      for (var c = 0u; c < p.c; c++) {
        let g = inv_n * (exp(inp[row + c] - l) - select(0.0, 1.0, c == k));
        dinp[row + c] = select(g, 0.0, k == p.c + 1u);
      }
    }
    if (k == p.c + 1u) {
      // ignored: no loss, no gradient
    } else if (k < p.c) {
      acc += l - inp[row + k];
    } else {
      acc += bitcast<f32>(NAN_BITS); // NaN: invalid target
      bad = min(bad, f32(n));
    }
  }
  workgroupBarrier(); // every thread has read the count's partial[0]
  let total = workgroup_sum(t, acc);
  if (t == 0u) { out[0] = total * inv_n; }
  let first = workgroup_min(t, bad);
  if (t == 0u) {
    if (first < f32(p.n)) {
      check[0] = first;
      check[1] = targets[u32(first)];
    } else {
      check[0] = -1.0;
      check[1] = 0.0;
    }
    check[2] = inv_n; // for the backward
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n * p.c) { return; }
  let n = i / p.c;
  let c = i % p.c;
  let k = class_of(n);
  let onehot = select(0.0, 1.0, c == k);
  let g = dout[0] * check[2] * (exp(inp[i] - lse[n]) - onehot);
  dinp[i] = select(g, 0.0, k == p.c + 1u);
}

@compute @workgroup_size(WG)
fn count_correct(@builtin(local_invocation_index) t: u32) {
  var acc = 0.0;
  for (var n = t; n < p.n; n += WG) {
    let row = n * p.c;
    var best = 0u;
    for (var c = 1u; c < p.c; c++) {
      if (inp[row + c] > inp[row + best]) { best = c; } // strict: first max wins ties
    }
    if (best == class_of(n)) { acc += 1.0; }
  }
  let total = workgroup_sum(t, acc);
  if (t == 0u) { out[0] = total; }
}
