// Naive 2-D convolution, the baseline that conv2d.wgsl's blocked kernels are measured
// against (kept until they are validated and faster; see bench/ops/conv2d_bench.ts):
//
//   forward_naive          one thread per out[n, o, y, x]: the full sum over (c, ky, kx)
//   backward_weight_naive  one thread per dweight[o, c, ky, kx]: the full sum over (n, y, x)
//
// Same uniform as conv2d.wgsl. Bindings: forward_naive 0 params, 1 inp, 2 weight, 3 out;
// backward_weight_naive 0 params, 1 inp, 2 dout, 3 dweight. Dispatch grid(ceil(total / WG)).

override WG: u32 = 64u;

struct Params {
  n: u32, c: u32, h: u32, w: u32,
  o: u32, oh: u32, ow: u32, kh: u32,
  kw: u32, sh: u32, sw: u32, o4: u32,
  ph: i32, pw: i32, qw: u32, total: u32,
  splits: u32, rows: u32, tiles: u32, kxb: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> res: array<f32>;

@compute @workgroup_size(WG)
fn forward_naive(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (i >= p.total) { return; }
  let x = i % p.ow;
  let y = (i / p.ow) % p.oh;
  let o = (i / (p.ow * p.oh)) % p.o;
  let n = i / (p.ow * p.oh * p.o);
  var s = 0.0;
  for (var c = 0u; c < p.c; c++) {
    for (var ky = 0u; ky < p.kh; ky++) {
      let iy = i32(y * p.sh + ky) - p.ph;
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      for (var kx = 0u; kx < p.kw; kx++) {
        let ix = i32(x * p.sw + kx) - p.pw;
        if (ix < 0 || ix >= i32(p.w)) { continue; }
        s += inp[((n * p.c + c) * p.h + u32(iy)) * p.w + u32(ix)] *
          weight[((o * p.c + c) * p.kh + ky) * p.kw + kx];
      }
    }
  }
  res[i] = s;
}

@compute @workgroup_size(WG)
fn backward_weight_naive(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (i >= p.total) { return; }
  let kx = i % p.kw;
  let ky = (i / p.kw) % p.kh;
  let c = (i / (p.kw * p.kh)) % p.c;
  let o = i / (p.kw * p.kh * p.c);
  var s = 0.0;
  for (var n = 0u; n < p.n; n++) {
    for (var y = 0u; y < p.oh; y++) {
      let iy = i32(y * p.sh + ky) - p.ph;
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      for (var x = 0u; x < p.ow; x++) {
        let ix = i32(x * p.sw + kx) - p.pw;
        if (ix < 0 || ix >= i32(p.w)) { continue; }
        s += dout[((n * p.o + o) * p.oh + y) * p.ow + x] *
          inp[((n * p.c + c) * p.h + u32(iy)) * p.w + u32(ix)];
      }
    }
  }
  res[i] = s;
}
