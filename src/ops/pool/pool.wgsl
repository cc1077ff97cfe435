// 2-D max and average pooling, forward and backward:
//
//   max_forward   out[n, c, y, x] = max over the window inp[n, c, y*SH - PH + ky, x*SW - PW + kx]
//                 (positions inside the input only), idx[n, c, y, x] = iy * W + ix of the
//                 winner: the first maximum in row-major window order, or a NaN (PyTorch's rule)
//   max_backward  dinp[n, c, iy, ix] = sum of dout[n, c, y, x] over the windows covering
//                 (iy, ix) whose idx is iy * W + ix
//   avg_forward   out[n, c, y, x] = sum over the window / (KH * KW) (padding counts as zeros,
//                 PyTorch's default count_include_pad = True)
//   avg_backward  dinp[n, c, iy, ix] = sum of dout[n, c, y, x] / (KH * KW) over the covering windows
//
// Thread-to-data mapping: one thread per output element (forward) or per input element
// (backward). The backward gathers rather than scatters, so overlapping windows (stride <
// kernel) need no atomics: the windows covering iy are y in [ceil((iy + PH - KH + 1) / SH),
// floor((iy + PH) / SH)] intersected with [0, OH), likewise x. When windows cannot overlap
// (stride >= kernel: LeNet's 2x2/2 pools) the *_backward_disjoint entry points instead
// give one thread per output element, which writes its whole window: 4x fewer threads for
// 2x2 windows. Inputs in no window are then left untouched, so the host zeroes dinp first
// unless the windows tile the input exactly. Pooling is memory-bound and each window is
// small, so plain scalar loads serve.
//
// Bindings: 0 params (uniform), then
//   max_forward   1 inp, 2 out, 3 idx (u32)      avg_forward   1 inp, 2 out
//   max_backward  1 dout, 2 dinp, 3 idx (u32)    avg_backward  1 dout, 2 dinp
//   (the *_disjoint variants bind the same)
// Tensors are contiguous f32: inp/dinp [N, C, H, W], out/dout/idx [N, C, OH, OW].
// Dispatch: grid(ceil(total / WG)) workgroups, total = threads (elements out or dinp).

override WG: u32 = 64u;

struct Params {
  h: u32, w: u32, oh: u32, ow: u32,
  kh: u32, kw: u32, sh: u32, sw: u32,
  ph: i32, pw: i32, total: u32,
  outputs: u32, // pool2_flat_*: N C OH OW
}

// NaN's bits, read at run time: a constant expression that yields NaN (or an infinity) is a
// shader-creation error in WGSL (Tint refuses `bitcast<f32>(0x7fc00000u)`; naga allows it).
var<private> NAN_BITS: u32 = 0x7fc00000u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<u32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(3) var<storage, read> idx_in: array<u32>;

fn thread_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// First and one-past-last window index covering input position i (of extent `o` windows).
fn covering(i: u32, pad: i32, k: u32, s: u32, o: u32) -> vec2<u32> {
  let hi = i32(i) + pad; // window start <= i + pad ...
  let lo = hi - i32(k) + 1; // ... and > i + pad - k
  let first = u32(max(lo + i32(s) - 1, 0)) / s; // ceil(max(lo, 0) / s)
  let last = select(0u, min(u32(hi) / s + 1u, o), hi >= 0);
  return vec2<u32>(first, max(first, last));
}

@compute @workgroup_size(WG)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let x = i % p.ow;
  let y = (i / p.ow) % p.oh;
  let plane = (i / (p.ow * p.oh)) * p.h * p.w;
  var best = 0.0;
  var arg = 0xffffffffu;
  var nan_seen = false;
  for (var ky = 0u; ky < p.kh; ky++) {
    let iy = i32(y * p.sh + ky) - p.ph;
    if (iy < 0 || iy >= i32(p.h)) { continue; }
    for (var kx = 0u; kx < p.kw; kx++) {
      let ix = i32(x * p.sw + kx) - p.pw;
      if (ix < 0 || ix >= i32(p.w)) { continue; }
      let at = u32(iy) * p.w + u32(ix);
      let v = inp[plane + at];
      // The first NaN wins and stays (PyTorch). NaN is tested by its bits and kept in a
      // flag: llvmpipe compiles float maths as if no value were NaN, which folds `v != v`
      // to false and lets `v > best` drop a NaN.
      if (nan_seen) { continue; }
      if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
        nan_seen = true;
        arg = at;
      } else if (arg == 0xffffffffu || v > best) {
        best = v;
        arg = at;
      }
    }
  }
  out[i] = select(best, bitcast<f32>(NAN_BITS), nan_seen);
  idx[i] = arg;
}

@compute @workgroup_size(WG)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let ix = i % p.w;
  let iy = (i / p.w) % p.h;
  let plane = (i / (p.w * p.h)) * p.oh * p.ow;
  let here = iy * p.w + ix;
  let ys = covering(iy, p.ph, p.kh, p.sh, p.oh);
  let xs = covering(ix, p.pw, p.kw, p.sw, p.ow);
  var s = 0.0;
  for (var y = ys.x; y < ys.y; y++) {
    for (var x = xs.x; x < xs.y; x++) {
      let o = plane + y * p.ow + x;
      if (idx_in[o] == here) { s += dout[o]; }
    }
  }
  dinp[i] = s;
}

@compute @workgroup_size(WG)
fn avg_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let x = i % p.ow;
  let y = (i / p.ow) % p.oh;
  let plane = (i / (p.ow * p.oh)) * p.h * p.w;
  var s = 0.0;
  for (var ky = 0u; ky < p.kh; ky++) {
    let iy = i32(y * p.sh + ky) - p.ph;
    if (iy < 0 || iy >= i32(p.h)) { continue; }
    for (var kx = 0u; kx < p.kw; kx++) {
      let ix = i32(x * p.sw + kx) - p.pw;
      if (ix < 0 || ix >= i32(p.w)) { continue; }
      s += inp[plane + u32(iy) * p.w + u32(ix)];
    }
  }
  out[i] = s / f32(p.kh * p.kw);
}

@compute @workgroup_size(WG)
fn avg_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let ix = i % p.w;
  let iy = (i / p.w) % p.h;
  let plane = (i / (p.w * p.h)) * p.oh * p.ow;
  let ys = covering(iy, p.ph, p.kh, p.sh, p.oh);
  let xs = covering(ix, p.pw, p.kw, p.sw, p.ow);
  var s = 0.0;
  for (var y = ys.x; y < ys.y; y++) {
    for (var x = xs.x; x < xs.y; x++) {
      s += dout[plane + y * p.ow + x];
    }
  }
  dinp[i] = s / f32(p.kh * p.kw);
}

// Windows that cannot overlap: the thread of output (y, x) writes its window of dinp.
fn backward_disjoint(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>, is_max: bool) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let x = i % p.ow;
  let y = (i / p.ow) % p.oh;
  let plane = (i / (p.ow * p.oh)) * p.h * p.w;
  let g = dout[i];
  var arg = 0u;
  if (is_max) { arg = idx_in[i]; }
  let avg = g / f32(p.kh * p.kw);
  for (var ky = 0u; ky < p.kh; ky++) {
    let iy = i32(y * p.sh + ky) - p.ph;
    if (iy < 0 || iy >= i32(p.h)) { continue; }
    for (var kx = 0u; kx < p.kw; kx++) {
      let ix = i32(x * p.sw + kx) - p.pw;
      if (ix < 0 || ix >= i32(p.w)) { continue; }
      let at = u32(iy) * p.w + u32(ix);
      dinp[plane + at] = select(avg, select(0.0, g, at == arg), is_max);
    }
  }
}

@compute @workgroup_size(WG)
fn max_backward_disjoint(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
  backward_disjoint(wid, nwg, lid, true);
}

@compute @workgroup_size(WG)
fn avg_backward_disjoint(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
  backward_disjoint(wid, nwg, lid, false);
}

// ---------------------------------------------------------------------------------------
// 2x2 windows, stride 2, no padding, W % 4 == 0 (LeNet's pools): one thread per 4
// neighbouring outputs of a row, which read the 2 x 8 input values under them as 4 vec4s
// and write 1 vec4 (and 1 of indices), instead of 4 scalar loads and 2 stores per output;
// the backward writes the same 2 x 8 values as 4 vec4s. pool2_backward needs windows that
// tile the input (H and W even) or a zeroed dinp, like the *_disjoint entry points.
// Bindings as max_forward / max_backward (avg_*: the idx binding is a placeholder), and the
// backward's 4 pooled (the forward's output, read with ACT; else a placeholder), the
// forward's 4 norm_stats (read with NORM; else a placeholder).
// Dispatch: grid(ceil(total / WG)), total = N * C * OH * ceil(OW / 4).

override IS_MAX: bool = true;
override OUT_ALIGNED: bool = false; // OW % 4 == 0: outputs and indices are whole vec4s
// Max pooling then an activation, in the same kernels (0 none, 1 ReLU, 2 sigmoid): the
// activation of each window's maximum, which is the maximum of the activated window (both
// are monotone), on a quarter of the values; the backward scales dout by the activation's
// derivative, from the pooled output (`pooled`, binding 4) before routing it.
override ACT: u32 = 0u;
// The output's width and height as constants (0: read from the params): llvmpipe has no
// vector integer division, so dividing by a uniform value runs lane by lane, where a
// constant divisor becomes a multiply and a shift. quad() and window2() divide by them.
override OW_C: u32 = 0u;
override OH_C: u32 = 0u;
// pool2_forward: the input normalized first, per channel, x' = (x - mean) * scale + bias
// from norm_stats[c] = (mean, rstd, scale, bias) (batch_norm's stats, binding 4), as
// batch_norm.wgsl's normalize computes it: batch norm, the activation and max pooling in one
// pass, the normalized values never stored. NORM_C: the channels (a constant: the channel of
// a plane is its index modulo NORM_C).
override NORM: bool = false;
override NORM_C: u32 = 1u;

fn out_w() -> u32 { return select(p.ow, OW_C, OW_C != 0u); }
fn out_h() -> u32 { return select(p.oh, OH_C, OH_C != 0u); }

@group(0) @binding(1) var<storage, read> inp4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> idx4: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> dout4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dinp4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> idx4_in: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> pooled: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> norm_stats: array<vec4<f32>>;

fn activate(v: vec4<f32>) -> vec4<f32> {
  if (ACT == 1u) { return max(v, vec4<f32>(0.0)); }
  if (ACT == 2u) { return 1.0 / (1.0 + exp(-v)); }
  return v;
}

// dout through the activation, from its output y: dout y (1 - y) or dout (y > 0).
fn through_activation(g: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
  if (ACT == 1u) { return select(vec4<f32>(0.0), g, y > vec4<f32>(0.0)); }
  if (ACT == 2u) { return g * y * (1.0 - y); }
  return g;
}

// The thread's outputs: plane (n, c), row y, first column x0, flat index of output x0.
struct Quad { plane: u32, y: u32, x0: u32, o: u32 }

fn quad(i: u32) -> Quad {
  let qw = (out_w() + 3u) / 4u;
  let xq = i % qw;
  let y = (i / qw) % out_h();
  let plane = i / (qw * out_h());
  return Quad(plane, y, 4u * xq, (plane * out_h() + y) * out_w() + 4u * xq);
}

/** Which components of x are NaN, from their bits. */
fn is_nan4(x: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

// The maxima of 4 windows, e[k][j] being element k (row-major) of window j, and which
// element won: the first maximum, or the first NaN, which always wins (PyTorch's rule, as
// max_forward), tested by its bits (llvmpipe folds `x != x` to false).
struct Max4 { v: vec4<f32>, k: vec4<u32> }

fn max4(e: array<vec4<f32>, 4>) -> Max4 {
  var v = e[0];
  var at = vec4<u32>(0u);
  for (var k = 1u; k < 4u; k++) {
    let take = !is_nan4(v) & ((e[k] > v) | is_nan4(e[k]));
    v = select(v, e[k], take);
    at = select(at, vec4<u32>(k), take);
  }
  return Max4(v, at);
}

// The gradients of the 4 elements of 4 windows, e[k][j] (as max4), from their outputs'
// gradients g and, for max, the winners' offsets `won` less the windows' top-left `at`.
fn window_grads(g: vec4<f32>, d: vec4<u32>) -> array<vec4<f32>, 4> {
  if (!IS_MAX) {
    let a = g * 0.25;
    return array<vec4<f32>, 4>(a, a, a, a);
  }
  let zero = vec4<f32>(0.0);
  return array<vec4<f32>, 4>(select(zero, g, d == vec4<u32>(0u)), select(zero, g, d == vec4<u32>(1u)),
                             select(zero, g, d == vec4<u32>(p.w)), select(zero, g, d == vec4<u32>(p.w + 1u)));
}

@compute @workgroup_size(WG)
fn pool2_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let q = quad(i);
  let top = (q.plane * p.h + 2u * q.y) * p.w + 2u * q.x0; // a multiple of 4
  var a0 = inp4[top / 4u];
  var a1 = inp4[top / 4u + 1u];
  var b0 = inp4[(top + p.w) / 4u];
  var b1 = inp4[(top + p.w) / 4u + 1u];
  if (NORM) {
    let st = norm_stats[q.plane % NORM_C];
    a0 = (a0 - st.x) * st.z + st.w;
    a1 = (a1 - st.x) * st.z + st.w;
    b0 = (b0 - st.x) * st.z + st.w;
    b1 = (b1 - st.x) * st.z + st.w;
  }
  // window element k of output j: e_k[j], in row-major window order
  let e = array<vec4<f32>, 4>(vec4<f32>(a0.xz, a1.xz), vec4<f32>(a0.yw, a1.yw),
                              vec4<f32>(b0.xz, b1.xz), vec4<f32>(b0.yw, b1.yw));
  var v: vec4<f32>;
  var at = vec4<u32>(0u);
  if (IS_MAX) {
    let m = max4(e);
    v = activate(m.v);
    let x = vec4<u32>(0u, 2u, 4u, 6u) + 2u * q.x0 + (m.k & vec4<u32>(1u));
    at = (2u * q.y + (m.k >> vec4<u32>(1u))) * p.w + x; // iy * W + ix, as max_forward
  } else {
    v = (e[0] + e[1] + e[2] + e[3]) * 0.25;
  }
  if (OUT_ALIGNED) {
    out4[q.o / 4u] = v;
    if (IS_MAX) { idx4[q.o / 4u] = at; }
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let o = q.o + j;
    if (q.x0 + j < p.ow) {
      out4[o / 4u][o % 4u] = v[j];
      if (IS_MAX) { idx4[o / 4u][o % 4u] = at[j]; }
    }
  }
}

@compute @workgroup_size(WG)
fn pool2_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let q = quad(i);
  var g: vec4<f32>;
  var k = vec4<u32>(0u);
  var y = vec4<f32>(0.0);
  if (OUT_ALIGNED) {
    g = dout4[q.o / 4u];
    if (IS_MAX) { k = idx4_in[q.o / 4u]; }
    if (ACT != 0u) { y = pooled[q.o / 4u]; }
  } else {
    for (var j = 0u; j < 4u; j++) {
      let o = min(q.o + j, q.o + p.ow - 1u - q.x0); // past the row: any in-bounds value
      g[j] = dout4[o / 4u][o % 4u];
      if (IS_MAX) { k[j] = idx4_in[o / 4u][o % 4u]; }
      if (ACT != 0u) { y[j] = pooled[o / 4u][o % 4u]; }
    }
  }
  g = through_activation(g, y);
  let top = (q.plane * p.h + 2u * q.y) * p.w + 2u * q.x0;
  // the gradient of window element k of output j: e[k][j]; which element won: k - (top
  // row's iy * W + 2 x) is 0, 1, W or W + 1
  let e = window_grads(g, k - ((2u * q.y) * p.w + 2u * q.x0 + vec4<u32>(0u, 2u, 4u, 6u)));
  // input columns 2 x0 .. 2 x0 + 3 hold outputs x0, x0 + 1; columns + 4 .. + 7 the next two
  dinp4[top / 4u] = vec4<f32>(e[0].x, e[1].x, e[0].y, e[1].y);
  dinp4[(top + p.w) / 4u] = vec4<f32>(e[2].x, e[3].x, e[2].y, e[3].y);
  if (q.x0 + 2u < p.ow) { // OW is even: outputs come in pairs
    dinp4[top / 4u + 1u] = vec4<f32>(e[0].z, e[1].z, e[0].w, e[1].w);
    dinp4[(top + p.w) / 4u + 1u] = vec4<f32>(e[2].z, e[3].z, e[2].w, e[3].w);
  }
}

// ---------------------------------------------------------------------------------------
// 2x2 windows, stride 2, no padding, W even, rows not of whole output vec4s (plain LeNet's
// pools: OW = 14 and 5): one thread per 4 consecutive outputs of the flattened output,
// which may span rows and planes, so that its outputs and indices are still one vec4
// store each (the last thread's, past the end, element by element); each output reads its
// window as 2 vec2s (W even: aligned), and the backward writes it as 2 vec2s. As pool2_*,
// the backward needs windows that tile the input (H even) or a zeroed dinp, and they bind
// as pool2_*. Dispatch: grid(ceil(total / WG)), total = ceil(outputs / 4).

@group(0) @binding(1) var<storage, read> inp2: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> dinp2: array<vec2<f32>>;

// Where the window of output o starts: in the input (`at`) and in its plane (iy * W + ix).
struct Window2 { at: u32, in_plane: u32 }

fn window2(o: u32) -> Window2 {
  let x = o % out_w();
  let r = o / out_w(); // plane * OH + y
  let y = r % out_h();
  let in_plane = 2u * y * p.w + 2u * x;
  return Window2((r - y) / out_h() * p.h * p.w + in_plane, in_plane);
}

// The 4 outputs of thread i (those past the end repeat the last one).
fn outputs4(i: u32) -> vec4<u32> {
  return min(vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.outputs - 1u));
}

// The windows of outputs o.
fn windows2(o: vec4<u32>) -> array<Window2, 4> {
  return array<Window2, 4>(window2(o.x), window2(o.y), window2(o.z), window2(o.w));
}

@compute @workgroup_size(WG)
fn pool2_flat_forward(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let w = windows2(outputs4(i));
  let row = p.w / 2u; // vec2s per input row
  let a0 = inp2[w[0].at / 2u]; let b0 = inp2[w[0].at / 2u + row];
  let a1 = inp2[w[1].at / 2u]; let b1 = inp2[w[1].at / 2u + row];
  let a2 = inp2[w[2].at / 2u]; let b2 = inp2[w[2].at / 2u + row];
  let a3 = inp2[w[3].at / 2u]; let b3 = inp2[w[3].at / 2u + row];
  let e = array<vec4<f32>, 4>(vec4<f32>(a0.x, a1.x, a2.x, a3.x), vec4<f32>(a0.y, a1.y, a2.y, a3.y),
                              vec4<f32>(b0.x, b1.x, b2.x, b3.x), vec4<f32>(b0.y, b1.y, b2.y, b3.y));
  var v: vec4<f32>;
  var at = vec4<u32>(0u);
  if (IS_MAX) {
    let m = max4(e);
    v = activate(m.v);
    let corner = vec4<u32>(w[0].in_plane, w[1].in_plane, w[2].in_plane, w[3].in_plane);
    at = corner + (m.k >> vec4<u32>(1u)) * p.w + (m.k & vec4<u32>(1u)); // iy * W + ix
  } else {
    v = (e[0] + e[1] + e[2] + e[3]) * 0.25;
  }
  if (4u * i + 4u <= p.outputs) {
    out4[i] = v;
    if (IS_MAX) { idx4[i] = at; }
    return;
  }
  for (var j = 0u; 4u * i + j < p.outputs; j++) {
    out4[i][j] = v[j];
    if (IS_MAX) { idx4[i][j] = at[j]; }
  }
}

@compute @workgroup_size(WG)
fn pool2_flat_backward(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  // past the end (the last thread): the last output's values, written again unchanged
  let o = outputs4(i);
  let w = windows2(o);
  var g = dout4[i];
  var k = vec4<u32>(0u);
  var y = vec4<f32>(0.0);
  if (IS_MAX) { k = idx4_in[i]; }
  if (ACT != 0u) { y = pooled[i]; }
  if (4u * i + 4u > p.outputs) {
    for (var j = 0u; j < 4u; j++) {
      g[j] = dout4[o[j] / 4u][o[j] % 4u];
      if (IS_MAX) { k[j] = idx4_in[o[j] / 4u][o[j] % 4u]; }
      if (ACT != 0u) { y[j] = pooled[o[j] / 4u][o[j] % 4u]; }
    }
  }
  g = through_activation(g, y);
  let corner = vec4<u32>(w[0].in_plane, w[1].in_plane, w[2].in_plane, w[3].in_plane);
  let e = window_grads(g, k - corner);
  let row = p.w / 2u;
  dinp2[w[0].at / 2u] = vec2<f32>(e[0].x, e[1].x); dinp2[w[0].at / 2u + row] = vec2<f32>(e[2].x, e[3].x);
  dinp2[w[1].at / 2u] = vec2<f32>(e[0].y, e[1].y); dinp2[w[1].at / 2u + row] = vec2<f32>(e[2].y, e[3].y);
  dinp2[w[2].at / 2u] = vec2<f32>(e[0].z, e[1].z); dinp2[w[2].at / 2u + row] = vec2<f32>(e[2].z, e[3].z);
  dinp2[w[3].at / 2u] = vec2<f32>(e[0].w, e[1].w); dinp2[w[3].at / 2u + row] = vec2<f32>(e[2].w, e[3].w);
}
