// 2-D convolution (cross-correlation, as PyTorch's F.conv2d), forward and backward: the plain
// schedule. One thread per element of the result, summing its terms as the float64
// reference does (reference.ts), with the same loops and the same bounds tests. Correct on
// any adapter and any shape the op accepts; the default wherever nobody has measured a faster
// schedule (tiled.wgsl is llvmpipe's).
//
//   forward          out[n, o, y, x] = act(bias[o] + sum_{c, ky, kx} inp[n, c, iy, ix]
//                                                                    * weight[o, c, ky, kx])
//   backward_inp     dinp[n, c, iy, ix] = sum_{o, ky, kx} dout[n, o, y, x] * weight[o, c, ky, kx]
//   backward_weight  dweight[o, c, ky, kx] = sum_{n, y, x} dout[n, o, y, x] * inp[n, c, iy, ix]
//                    dbias[o]              = sum_{n, y, x} dout[n, o, y, x]
//
// where iy = y*SH - PH + ky and ix = x*SW - PW + kx. dinp's sum runs over the (o, ky, kx)
// whose output covers (iy, ix): y = (iy + PH - ky) / SH a whole number in [0, OH), likewise x.
//
// The input is zero outside [0, H) x [0, W): the terms that would read there are skipped. act
// is the fused activation (ACT: 0 none, 1 ReLU, 2 sigmoid); its gradient is taken on the host
// before backward_*. All tensors are contiguous, row-major: inp [N, C, H, W], weight
// [O, C, KH, KW], out [N, O, OH, OW], and each gradient like its tensor.
//
// Threads: one per element of the result, numbered in its row-major order (a 1-D index split
// over the x and y of the dispatch):
//   forward          i = ((n*O + o)*OH + y)*OW + x           N*O*OH*OW threads
//   backward_inp     i = ((n*C + c)*H + iy)*W + ix           N*C*H*W threads
//   backward_weight  i = ((o*C + c)*KH + ky)*KW + kx, then   O*C*KH*KW threads,
//                    i = O*C*KH*KW + o for dbias[o]          and O more with a bias
// Neighbouring threads take neighbouring elements, so their loads of inp, dout and the weight
// fall close together; nothing is shared between threads, and no thread depends on another.
//
// Long sums: llvmpipe silently ends a loop after 65535 iterations (counted across the
// re-entries of an inner loop), and a long thread risks a GPU's watchdog. So each dispatch
// sums only a slice [lo, hi) of its sum's outer index, small enough that the innermost loop
// runs at most MAX_LOOP times (src/gpu/profile.ts): input channels c for forward (at most
// MAX_LOOP / (KH*KW) of them), output channels o for backward_inp (likewise), output
// positions q = (n*OH + y)*OW + x for backward_weight (at most MAX_LOOP; a kernel of more
// than MAX_LOOP taps is refused by the host). The host dispatches the slices in order: each
// thread sums its slice's terms in a register of its own, then the slice with lo = 0 writes
// that sum (forward: plus the bias), each later one adds it to what the earlier ones left,
// and the forward applies act in the last (hi = C). Most convolutions are one slice. (One
// register for all the slices would be shorter, and less exact: LeNet's conv1 dweight, a
// float32 sum of 147456 terms, drifted 1.5x past the tests' tolerance that way; in 9 slices
// it stays at 0.57x, the tiled reduction at 0.08x.)
//
// Bindings (slot 1 is inp or dinp, 2 weight or dweight, 3 bias or dout, 4 out or dbias):
//   forward          0 params, 1 inp,  2 weight,  3 bias, 4 out
//   backward_inp     0 params, 1 dinp, 2 weight,  3 dout
//   backward_weight  0 params, 1 inp,  2 dweight, 3 dout, 4 dbias
// Overrides: WG threads per workgroup, HAS_BIAS (bias is added, dbias written), ACT.
// Dispatch: grid(ceil(threads / WG)) workgroups, thread index (wid.x + wid.y * nwg.x) * WG
// + lid.x; threads past the end return at once. Gradients overwrite (fresh tensors); the
// autograd tape sums them.

override WG: u32 = 64u;
override HAS_BIAS: bool = true;
override ACT: u32 = 0u;

struct Params {
  n: u32, c: u32, h: u32, w: u32, // inp [N, C, H, W]
  o: u32, kh: u32, kw: u32,       // weight [O, C, KH, KW]
  oh: u32, ow: u32,               // out [N, O, OH, OW]
  sh: u32, sw: u32,               // stride
  ph: i32, pw: i32,               // zero padding on each side
  lo: u32, hi: u32,               // the slice of the sum this dispatch adds (see above)
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;

fn thread_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

fn inp_index(n: u32, c: u32, iy: u32, ix: u32) -> u32 {
  return ((n * p.c + c) * p.h + iy) * p.w + ix;
}

fn weight_index(o: u32, c: u32, ky: u32, kx: u32) -> u32 {
  return ((o * p.c + c) * p.kh + ky) * p.kw + kx;
}

fn out_index(n: u32, o: u32, y: u32, x: u32) -> u32 {
  return ((n * p.o + o) * p.oh + y) * p.ow + x;
}

fn activate(v: f32) -> f32 {
  if (ACT == 1u) { return max(v, 0.0); }
  if (ACT == 2u) { return 1.0 / (1.0 + exp(-v)); }
  return v;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= p.n * p.o * p.oh * p.ow) { return; }
  let x = i % p.ow;
  let y = (i / p.ow) % p.oh;
  let o = (i / (p.ow * p.oh)) % p.o;
  let n = i / (p.ow * p.oh * p.o);
  var s = 0.0;
  for (var c = p.lo; c < p.hi; c++) {
    for (var ky = 0u; ky < p.kh; ky++) {
      let iy = i32(y * p.sh + ky) - p.ph;
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      for (var kx = 0u; kx < p.kw; kx++) {
        let ix = i32(x * p.sw + kx) - p.pw;
        if (ix < 0 || ix >= i32(p.w)) { continue; }
        s += inp[inp_index(n, c, u32(iy), u32(ix))] * weight[weight_index(o, c, ky, kx)];
      }
    }
  }
  if (p.lo > 0u) {
    s += out[i]; // the earlier slices' sum, bias included
  } else if (HAS_BIAS) {
    s += bias[o];
  }
  if (p.hi == p.c) { s = activate(s); }
  out[i] = s;
}

// The outputs whose window covers input (iy, ix) at tap (ky, kx): y*SH - PH + ky = iy, so
// y = (iy + PH - ky) / SH when that is a whole number in [0, OH); likewise x.
@compute @workgroup_size(WG)
fn backward_inp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= p.n * p.c * p.h * p.w) { return; }
  let ix = i32(i % p.w);
  let iy = i32((i / p.w) % p.h);
  let c = (i / (p.w * p.h)) % p.c;
  let n = i / (p.w * p.h * p.c);
  var s = 0.0;
  for (var o = p.lo; o < p.hi; o++) {
    for (var ky = 0u; ky < p.kh; ky++) {
      let ty = iy + p.ph - i32(ky);
      if (ty < 0 || ty % i32(p.sh) != 0) { continue; }
      let y = u32(ty) / p.sh;
      if (y >= p.oh) { continue; }
      for (var kx = 0u; kx < p.kw; kx++) {
        let tx = ix + p.pw - i32(kx);
        if (tx < 0 || tx % i32(p.sw) != 0) { continue; }
        let x = u32(tx) / p.sw;
        if (x >= p.ow) { continue; }
        s += dout[out_index(n, o, y, x)] * weight[weight_index(o, c, ky, kx)];
      }
    }
  }
  if (p.lo > 0u) { s += dinp[i]; } // the earlier slices' sum
  dinp[i] = s;
}

// The slice's output positions q = (n*OH + y)*OW + x in one loop, as the reference's loops
// over n, y and x run through them: one loop whose length the host bounds.
@compute @workgroup_size(WG)
fn backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  let size = p.o * p.c * p.kh * p.kw;
  if (i < size) {
    let kx = i % p.kw;
    let ky = (i / p.kw) % p.kh;
    let c = (i / (p.kw * p.kh)) % p.c;
    let o = i / (p.kw * p.kh * p.c);
    var s = 0.0;
    for (var q = p.lo; q < p.hi; q++) {
      let x = q % p.ow;
      let y = (q / p.ow) % p.oh;
      let n = q / (p.ow * p.oh);
      let iy = i32(y * p.sh + ky) - p.ph;
      let ix = i32(x * p.sw + kx) - p.pw;
      if (iy < 0 || iy >= i32(p.h) || ix < 0 || ix >= i32(p.w)) { continue; }
      s += dout[out_index(n, o, y, x)] * inp[inp_index(n, c, u32(iy), u32(ix))];
    }
    if (p.lo > 0u) { s += dweight[i]; } // the earlier slices' sum
    dweight[i] = s;
  } else if (HAS_BIAS && i < size + p.o) {
    let o = i - size;
    var s = 0.0;
    for (var q = p.lo; q < p.hi; q++) {
      let x = q % p.ow;
      let y = (q / p.ow) % p.oh;
      let n = q / (p.ow * p.oh);
      s += dout[out_index(n, o, y, x)];
    }
    if (p.lo > 0u) { s += dbias[o]; }
    dbias[o] = s;
  }
}
