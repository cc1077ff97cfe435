// 2-D convolution (cross-correlation, as PyTorch's F.conv2d), forward and backward:
//
//   forward          out[n, o, y, x]  = bias[o] + sum_{c, ky, kx} inp[n, c, y*SH - PH + ky, x*SW - PW + kx]
//                                                               * weight[o, c, ky, kx]
//   backward_inp     dinp[n, c, i, j] = sum_{o, ky, kx} dout[n, o, y, x] * weight[o, c, ky, kx]
//                                       over y*SH - PH + ky = i, x*SW - PW + kx = j
//   backward_weight  dweight[o, c, ky, kx] = sum_{n, y, x} dout[n, o, y, x] * inp[n, c, y*SH - PH + ky, ...]
//                    dbias[o]              = sum_{n, y, x} dout[n, o, y, x]
//
// inp is read as 0 outside [0, H) x [0, W). All tensors are contiguous, row-major:
// inp [N, C, H, W], weight [O, C, KH, KW], out [N, O, OH, OW].
//
// forward is an implicit GEMM, out(o, pixel) = sum_k weight(o, k) * inp(k, pixel) with
// k = (c, ky, kx), without materialising the im2col matrix. Each thread owns a tile of out:
// 4 CQ output channels o0.. by 4 neighbouring pixels x0..x0+3 of one output row, held in
// vec4 registers (acc[r] = channel o0+r, pixels x0..x0+3; acc2 the next 4 channels when
// CQ = 2). The weight is first repacked (pack_weight) as wpack[k, o] with the channel
// dimension padded to O4 (a multiple of 4 CQ), so the 4 weights of a k are one vec4 load.
// With unit stride the 4 pixels read inp[row, x0 - PW + kx .. +3]; for kx = kx0 .. kx0+3
// these windows all lie in the 8 values inp[row, x0 - PW + kx0 .. +7], loaded once (two
// vec4 loads when ALIGNED), so a block of 4 kx costs 2 input loads, 4 CQ weight loads and
// 64 CQ multiply-adds. Other strides gather the 4 input values per kx with scalar loads.
// No workgroup memory, no barriers: on llvmpipe barriers are expensive and vec4 loads ~3x
// cheaper than scalar ones. Neighbouring threads take the same pixels of neighbouring
// images, and each thread loops only over the ky whose input row exists: llvmpipe runs
// 8 threads in lock-step and skips work only when a loop ends for all of them (an `if`
// just masks lanes), so padding rows then cost nothing. KH and KW are specialisation
// constants (0 = read from the uniform) so that the tap loops unroll.
//
// backward_inp with unit stride is itself a convolution: dout correlated with the weight
// flipped in ky and kx and transposed in (o, c), with padding KH-1-PH and KW-1-PW. The host
// runs `forward` for it, on the weight repacked by pack_weight_flipped. Other strides use
// `backward_inp` (one thread per dinp element, gathering the outputs whose window covers it).
//
// backward_weight is a reduction over N*OH*OW, split in two passes. Pass 1
// (backward_weight): thread (tile, split) owns 4 CQ output channels o0.. by 4 taps
// kx0..kx0+3 of one (c, ky), and sums over the output rows of its split; per 4 pixels it
// loads dout[n, o0+r, y, x0..x0+3] (4 CQ vec4 loads) and the same 8-value input window as
// the forward, then does 64 CQ multiply-adds. The tile with c = ky = kx0 = 0 also sums dout
// for dbias. Partial sums go to part [SPLITS, O, C*KH*KW] and partb [SPLITS, O]. Pass 2
// (reduce_weight): one thread per dweight (then dbias) element sums its SPLITS partials.
// Each thread's loops stay far below 65535 iterations: llvmpipe silently ends longer loops.
//
// Overrides: WG_X x WG_Y threads per forward workgroup (x along pixel quads, y along
// channel groups); WG threads in the 1-D kernels; CQ (1 or 2) channel quads per thread;
// KH, KW (forward); UNIT_STRIDE (SH = SW = 1); ALIGNED
// (UNIT_STRIDE, W and PW multiples of 4: every 4-aligned group of 4 input values in a row is
// one vec4 wholly inside or outside [0, W)); OUT_ALIGNED (OW a multiple of 4: out and dout
// rows are vec4s); HAS_BIAS.
//
// Bindings (binding i = the i-th of each entry point's list):
//   pack_weight(_flipped)  0 params, 1 weight,          2 wpack
//   forward                0 params, 1 inp,             2 wpack,     3 out,      4 bias
//   backward_inp           0 params, 1 dout,            2 weight,    3 dinp
//   backward_weight        0 params, 1 inp,             2 dout,      3 part,     4 partb
//   reduce_weight          0 params, 1 part,            2 partb,     3 dweight,  4 dbias
// Dispatch: forward [grid(ceil(quads / WG_X)), ceil(O4 / (4 CQ) / WG_Y)] with quads =
// N*OH*QW, QW = ceil(OW / 4), quad q = (y * QW + x / 4) * N + n; the 1-D kernels
// grid(ceil(total / WG)).
// Gradients overwrite (fresh tensors); the autograd tape sums them.

override WG_X: u32 = 16u;
override WG_Y: u32 = 4u;
override WG: u32 = 64u;
override UNIT_STRIDE: bool = true;
override ALIGNED: bool = false;
override OUT_ALIGNED: bool = false;
override HAS_BIAS: bool = true;
override CQ: u32 = 1u;
override KH: u32 = 0u;
override KW: u32 = 0u;

struct Params {
  n: u32, c: u32, h: u32, w: u32,
  o: u32, oh: u32, ow: u32, kh: u32,
  kw: u32, sh: u32, sw: u32,
  o4: u32,     // channels per wpack row: O rounded up to 4 CQ (C for pack_weight_flipped)
  ph: i32, pw: i32,
  qw: u32,     // pixel quads per output row, ceil(OW / 4)
  total: u32,  // threads with work: quads (forward), elements (1-D kernels), tiles*splits
  splits: u32, // backward_weight: number of partial sums
  rows: u32,   // backward_weight: output rows (n, y) per split
  tiles: u32,  // backward_weight: ceil(O / (4 CQ)) * C * KH * ceil(KW / 4)
  kxb: u32,    // backward_weight: ceil(KW / 4)
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> inp: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wpack: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> wpack_out: array<f32>;

@group(0) @binding(1) var<storage, read> dout_flat: array<f32>;
@group(0) @binding(2) var<storage, read> weight_flat: array<f32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;

@group(0) @binding(2) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<storage, read_write> partb: array<f32>;

@group(0) @binding(1) var<storage, read> part_in: array<f32>;
@group(0) @binding(2) var<storage, read> partb_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// ---------------------------------------------------------------------------------------
// Weight repacking: wpack[k, o] (row length O4) from weight[o, k], k = (c, ky, kx).

@compute @workgroup_size(WG)
fn pack_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = linear_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let k = i / p.o4;
  let o = i % p.o4;
  let kk = p.c * p.kh * p.kw;
  wpack_out[i] = select(0.0, weight[o * kk + k], o < p.o);
}

// For dinp as a forward convolution of dout: wpack[(o, ky, kx), c] (row length O4 = C
// rounded up to 4) = weight[o, c, KH-1-ky, KW-1-kx].
@compute @workgroup_size(WG)
fn pack_weight_flipped(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = linear_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let k = i / p.o4;
  let c = i % p.o4;
  let kx = k % p.kw;
  let ky = (k / p.kw) % p.kh;
  let o = k / (p.kw * p.kh);
  let src = ((o * p.c + c) * p.kh + (p.kh - 1u - ky)) * p.kw + (p.kw - 1u - kx);
  wpack_out[i] = select(0.0, weight[min(src, arrayLength(&weight) - 1u)], c < p.c);
}

// ---------------------------------------------------------------------------------------
// Forward.

fn inp_at(i: u32) -> f32 {
  return inp[i >> 2u][i & 3u];
}

// The 8 values inp[row + ix0 .. row + ix0 + 7] of the input row starting at element `row`,
// as two vec4s; values outside the row ([0, W)) read as 0.
fn load8(row: u32, ix0: i32) -> array<vec4<f32>, 2> {
  let w = i32(p.w);
  if (ALIGNED) {
    // row and ix0 are multiples of 4 and so is W: each half is wholly inside or outside.
    let lo = inp[(row + u32(clamp(ix0, 0, w - 4))) >> 2u];
    let hi = inp[(row + u32(clamp(ix0 + 4, 0, w - 4))) >> 2u];
    return array<vec4<f32>, 2>(
      select(vec4<f32>(0.0), lo, ix0 >= 0 && ix0 < w),
      select(vec4<f32>(0.0), hi, ix0 + 4 >= 0 && ix0 + 4 < w),
    );
  }
  var lo = vec4<f32>(0.0);
  var hi = vec4<f32>(0.0);
  for (var j = 0; j < 4; j++) {
    let a = ix0 + j;
    let b = ix0 + 4 + j;
    if (a >= 0 && a < w) { lo[j] = inp_at(row + u32(a)); }
    if (b >= 0 && b < w) { hi[j] = inp_at(row + u32(b)); }
  }
  return array<vec4<f32>, 2>(lo, hi);
}

// acc[r] += wv[r] * win: one tap for 4 channels x 4 pixels.
fn mac(acc: ptr<function, array<vec4<f32>, 4>>, wv: vec4<f32>, win: vec4<f32>) {
  (*acc)[0] += wv.x * win;
  (*acc)[1] += wv.y * win;
  (*acc)[2] += wv.z * win;
  (*acc)[3] += wv.w * win;
}

fn wrow(k: u32, o0: u32) -> vec4<f32> {
  return wpack[(k * p.o4 + o0) >> 2u];
}

fn store4(n: u32, o0: u32, y: u32, x0: u32, acc: array<vec4<f32>, 4>) {
  for (var r = 0u; r < 4u; r++) {
    let o = o0 + r;
    if (o >= p.o) { return; }
    var v = acc[r];
    if (HAS_BIAS) { v += bias[o]; }
    let base = ((n * p.o + o) * p.oh + y) * p.ow + x0;
    if (OUT_ALIGNED) {
      out[base >> 2u] = v;
    } else {
      // A quad may straddle two vec4s shared with neighbouring threads: write own lanes only.
      for (var j = 0u; j < 4u; j++) {
        let i = base + j;
        if (x0 + j < p.ow) { out[i >> 2u][i & 3u] = v[j]; }
      }
    }
  }
}

// One tap for the thread's 4 CQ channels: acc* += weights of tap k * the window.
fn tap(a: ptr<function, array<vec4<f32>, 4>>, b: ptr<function, array<vec4<f32>, 4>>, k: u32,
       o0: u32, win: vec4<f32>) {
  mac(a, wrow(k, o0), win);
  if (CQ == 2u) { mac(b, wrow(k, o0 + 4u), win); }
}

@compute @workgroup_size(WG_X, WG_Y)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let q = (wid.x + wid.y * nwg.x) * WG_X + lid.x;
  let o0 = (wid.z * WG_Y + lid.y) * 4u * CQ;
  if (q >= p.total || o0 >= p.o) { return; }
  // Neighbouring threads take the same pixels of neighbouring images: on SIMD
  // rasterisers (llvmpipe) their loop bounds then agree, so rows of padding cost nothing.
  let n = q % p.n;
  let x0 = ((q / p.n) % p.qw) * 4u;
  let y = q / (p.n * p.qw);
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  var acc2 = acc; // channels o0+4 .. o0+7 when CQ = 2
  let kh = select(p.kh, KH, KH != 0u);
  let kw = select(p.kw, KW, KW != 0u);
  // taps ky whose input row iy = y*SH - PH + ky lies in [0, H)
  let top = i32(y * p.sh) - p.ph;
  let ky_lo = u32(max(-top, 0));
  let ky_hi = u32(clamp(i32(p.h) - top, 0, i32(kh)));
  for (var c = 0u; c < p.c; c++) {
    for (var ky = ky_lo; ky < ky_hi; ky++) {
      let iy = top + i32(ky);
      let row = ((n * p.c + c) * p.h + u32(iy)) * p.w;
      let k_row = (c * kh + ky) * kw; // k of (c, ky, kx = 0)
      if (UNIT_STRIDE) {
        for (var kx0 = 0u; kx0 < kw; kx0 += 4u) {
          // windows of taps kx0 + j: v[j .. j+3]
          let v = load8(row, i32(x0 + kx0) - p.pw);
          let k = k_row + kx0;
          let left = kw - kx0;
          tap(&acc, &acc2, k, o0, v[0]);
          if (left > 1u) { tap(&acc, &acc2, k + 1u, o0, vec4<f32>(v[0].yzw, v[1].x)); }
          if (left > 2u) { tap(&acc, &acc2, k + 2u, o0, vec4<f32>(v[0].zw, v[1].xy)); }
          if (left > 3u) { tap(&acc, &acc2, k + 3u, o0, vec4<f32>(v[0].w, v[1].xyz)); }
        }
      } else {
        for (var kx = 0u; kx < kw; kx++) {
          var win = vec4<f32>(0.0);
          for (var j = 0u; j < 4u; j++) {
            let ix = i32((x0 + j) * p.sw + kx) - p.pw;
            if (ix >= 0 && ix < i32(p.w)) { win[j] = inp_at(row + u32(ix)); }
          }
          tap(&acc, &acc2, k_row + kx, o0, win);
        }
      }
    }
  }
  store4(n, o0, y, x0, acc);
  if (CQ == 2u) { store4(n, o0 + 4u, y, x0, acc2); }
}

// ---------------------------------------------------------------------------------------
// dinp for any stride: one thread per dinp element, gathering over the (o, ky, kx) whose
// output position (y, x) = ((i + PH - ky) / SH, (j + PW - kx) / SW) is whole and in range.

@compute @workgroup_size(WG)
fn backward_inp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = linear_id(wid, nwg, lid);
  if (idx >= p.total) { return; }
  let ix = i32(idx % p.w);
  let iy = i32((idx / p.w) % p.h);
  let c = (idx / (p.w * p.h)) % p.c;
  let n = idx / (p.w * p.h * p.c);
  var s = 0.0;
  for (var o = 0u; o < p.o; o++) {
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
        s += dout_flat[((n * p.o + o) * p.oh + y) * p.ow + x] *
          weight_flat[((o * p.c + c) * p.kh + ky) * p.kw + kx];
      }
    }
  }
  dinp[idx] = s;
}

// ---------------------------------------------------------------------------------------
// dweight and dbias, pass 1: partial sums over the output rows of one split.

// dout[n, o, y, x0 .. x0+3], zero for o >= O or pixels past OW.
fn dout4(n: u32, o: u32, y: u32, x0: u32) -> vec4<f32> {
  if (o >= p.o) { return vec4<f32>(0.0); }
  let base = ((n * p.o + o) * p.oh + y) * p.ow + x0;
  if (OUT_ALIGNED) { return dout[base >> 2u]; }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let i = base + j;
    if (x0 + j < p.ow) { v[j] = dout[i >> 2u][i & 3u]; }
  }
  return v;
}

// One pixel quad's share for channels o0..o0+3: acc[r][j] += sum_i dout[n, o0+r, y, x0+i]
// * win[i][j] (when `inside`), and db[r] += sum_i dout[n, o0+r, y, x0+i] (when `sums_bias`).
fn grad_quad(acc: ptr<function, array<vec4<f32>, 4>>, db: ptr<function, vec4<f32>>, n: u32,
             o0: u32, y: u32, x0: u32, win: array<vec4<f32>, 4>, inside: bool,
             sums_bias: bool) {
  let d = array<vec4<f32>, 4>(
    dout4(n, o0, y, x0), dout4(n, o0 + 1u, y, x0),
    dout4(n, o0 + 2u, y, x0), dout4(n, o0 + 3u, y, x0),
  );
  if (sums_bias) {
    let one = vec4<f32>(1.0);
    *db += vec4<f32>(dot(d[0], one), dot(d[1], one), dot(d[2], one), dot(d[3], one));
  }
  if (!inside) { return; }
  for (var o = 0u; o < 4u; o++) {
    (*acc)[o] += d[o].x * win[0] + d[o].y * win[1] + d[o].z * win[2] + d[o].w * win[3];
  }
}

fn store_part(split: u32, o0: u32, c: u32, ky: u32, kx0: u32, acc: array<vec4<f32>, 4>,
              db: vec4<f32>, sums_bias: bool) {
  let kk = p.c * p.kh * p.kw;
  for (var o = 0u; o < 4u; o++) {
    if (o0 + o >= p.o) { return; }
    let base = (split * p.o + o0 + o) * kk + (c * p.kh + ky) * p.kw + kx0;
    for (var j = 0u; j < 4u; j++) {
      if (kx0 + j < p.kw) { part[base + j] = acc[o][j]; }
    }
    if (HAS_BIAS && sums_bias) { partb[split * p.o + o0 + o] = db[o]; }
  }
}

@compute @workgroup_size(WG)
fn backward_weight(@builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = linear_id(wid, nwg, lid);
  if (g >= p.total) { return; }
  let tile = g % p.tiles;
  let split = g / p.tiles;
  // tile = ((ob * C + c) * KH + ky) * KXB + kxb: neighbouring threads share o0 and c.
  let kx0 = (tile % p.kxb) * 4u;
  let ky = (tile / p.kxb) % p.kh;
  let c = (tile / (p.kxb * p.kh)) % p.c;
  let o0 = (tile / (p.kxb * p.kh * p.c)) * 4u * CQ;
  let sums_bias = c == 0u && ky == 0u && kx0 == 0u;
  // acc[r][j] = partial dweight[o0 + r, c, ky, kx0 + j]; acc2 the same for o0 + 4 + r (CQ = 2)
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  var acc2 = acc;
  var db = vec4<f32>(0.0);
  var db2 = vec4<f32>(0.0);
  let row_end = min((split + 1u) * p.rows, p.n * p.oh);
  for (var r = split * p.rows; r < row_end; r++) {
    let n = r / p.oh;
    let y = r % p.oh;
    let iy = i32(y * p.sh + ky) - p.ph;
    let inside = iy >= 0 && iy < i32(p.h);
    if (!inside && !sums_bias) { continue; }
    let row = ((n * p.c + c) * p.h + u32(clamp(iy, 0, i32(p.h) - 1))) * p.w;
    for (var x0 = 0u; x0 < p.ow; x0 += 4u) {
      // win[i][j] = inp[n, c, iy, (x0 + i) * SW - PW + kx0 + j]: pixel i, tap j
      var win: array<vec4<f32>, 4>;
      if (UNIT_STRIDE) {
        let v = load8(row, i32(x0 + kx0) - p.pw);
        win = array<vec4<f32>, 4>(v[0], vec4<f32>(v[0].yzw, v[1].x),
          vec4<f32>(v[0].zw, v[1].xy), vec4<f32>(v[0].w, v[1].xyz));
      } else {
        for (var i = 0u; i < 4u; i++) {
          for (var j = 0u; j < 4u; j++) {
            let ix = i32((x0 + i) * p.sw + kx0 + j) - p.pw;
            win[i][j] = select(0.0, inp_at(row + u32(max(ix, 0))), ix >= 0 && ix < i32(p.w));
          }
        }
      }
      grad_quad(&acc, &db, n, o0, y, x0, win, inside, sums_bias);
      if (CQ == 2u) { grad_quad(&acc2, &db2, n, o0 + 4u, y, x0, win, inside, sums_bias); }
    }
  }
  store_part(split, o0, c, ky, kx0, acc, db, sums_bias);
  if (CQ == 2u) { store_part(split, o0 + 4u, c, ky, kx0, acc2, db2, sums_bias); }
}

// dweight and dbias, pass 2: thread i < O*KK sums part[:, i] into dweight[i]; the next O
// threads sum partb[:, o] into dbias[o].
@compute @workgroup_size(WG)
fn reduce_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = linear_id(wid, nwg, lid);
  let size = p.o * p.c * p.kh * p.kw;
  if (i < size) {
    var s = 0.0;
    for (var k = 0u; k < p.splits; k++) { s += part_in[k * size + i]; }
    dweight[i] = s;
  } else if (HAS_BIAS && i < size + p.o) {
    let o = i - size;
    var s = 0.0;
    for (var k = 0u; k < p.splits; k++) { s += partb_in[k * p.o + o]; }
    dbias[o] = s;
  }
}
