// 2-D convolution, the llvmpipe schedule (tiled.ts): register-tiled kernels measured on
// Mesa's llvmpipe (lavapipe, Vulkan on the CPU) and chosen only there. They compute what the
// plain kernels of conv2d.wgsl compute, the float64 reference's sums (reference.ts):
//
//   forward          out[n, o, y, x]  = bias[o] + sum_{c, ky, kx} inp[n, c, y*SH - PH + ky, x*SW - PW + kx]
//                                                               * weight[o, c, ky, kx]
//   dinp (SH = SW = 1) dinp[n, c, i, j] = sum_{o, ky, kx} dout[n, o, i + PH - ky, j + PW - kx]
//                                                       * weight[o, c, ky, kx]
//   backward_weight  dweight[o, c, ky, kx] = sum_{n, y, x} dout[n, o, y, x] * inp[n, c, y*SH - PH + ky, ...]
//                    dbias[o]              = sum_{n, y, x} dout[n, o, y, x]
//
// inp is read as 0 outside [0, H) x [0, W). All tensors are contiguous, row-major:
// inp [N, C, H, W], weight [O, C, KH, KW], out [N, O, OH, OW]. The dinp of a strided
// convolution is conv2d.wgsl's plain backward_inp on every schedule.
//
// What the layout is built around (measured on llvmpipe, the CPU adapter): every
// per-thread load from a storage buffer is a loop over the 8 SIMD lanes, so loads, not
// multiply-adds, set the speed; a value the compiler can prove uniform (the same for the
// whole workgroup) is loaded and branched on once, and a uniform buffer read at a uniform
// index costs a fraction of a storage load; and llvmpipe keeps a thread's values in
// registers only when every index into them is a constant, up to about 32 floats. Hence:
// lanes run over images, while the pixels, channels and taps a thread works on are the
// workgroup's; tiles of 8 vec4 accumulators in named variables; tap loops written out.
//
// pad_rows copies the input into rows [N, C, H, WP] zero-padded by PW on both sides and
// WP a multiple of 4, so that with unit stride every window the kernels read starts on a
// vec4 boundary and needs no bounds test (skipped when PW = 0 and W % 4 == 0). Rows above
// and below the input (PH) are not materialised: each thread loops only over the ky whose
// input row exists, a uniform range, so padding rows cost nothing.
//
// forward is an implicit GEMM, out(o, pixel) = sum_k weight(o, k) * inp(k, pixel) with
// k = (c, ky, kx), without materialising the im2col matrix. The weight is first repacked
// (pack_weight) as wpack[k, o] with the channel dimension padded to O4 (a multiple of
// 4 CQ), so the 4 weights of a k for 4 channels are one vec4, read from a uniform buffer
// (W_UNIFORM) when it fits in 64 KiB. Workgroup (n block, pixel block, channel block):
// each lane is one image n and owns 4 CQ channels x TW pixels of one output row (CQ = 1:
// 4 channels x 8 pixels; CQ = 2: 8 channels x 4, 8 or 12 pixels). With unit stride, taps
// kx0 .. kx0+3 of those pixels read the values x0 + kx0 .. x0 + kx0 + TW + 3 of the padded
// row: TW / 4 + 1 vec4 loads feed 4 taps x 4 CQ x TW multiply-adds, and with KW <= 8 the
// taps 4.. reuse them shifted by one vec4 (one more load when a tap past the fifth needs
// it). Other strides gather the input values per tap with scalar loads.
//
// dinp with unit stride is itself a convolution: dout correlated with the weight flipped in
// ky and kx and transposed in (o, c), with padding KH-1-PH and KW-1-PW. The host runs
// `forward` for it, on the weight repacked by pack_weight_flipped. That padding is wide (4
// columns each side at 5x5), so the host dispatches the forward once per run of pixel blocks
// (of one tile, from pixel xb0 of every row) whose taps read real values in the same range
// [KX_LO, KX_HI): the taps, and whole tap blocks, that would read only padding are skipped at
// compile time, and the runs' tiles are chosen so that few pixels past the row and few padding
// taps are computed. (Rows need no such split: each thread loops over the ky whose row exists.)
// Within the taps that run, a vec4 of the row window that holds only padding in every block
// of the dispatch (ZEROS) is not loaded: at LeNet+BN's conv2 dinp (8 values padded by 4 on
// each side, one block of 12 pixels) two of the four loads per (channel, kernel row).
//
// backward_weight is a reduction over N*OH*OW, split in two passes. Pass 1: workgroup
// (tile, lane group, row range), the tile being 4 OQ output channels o0.. x CT sets of
// (input channel, kernel row) x taps kx0..kx0+7: CT input channels c0.. of one ky, or, when
// C = 1, CT kernel rows ky0.. (ALONG_KY). Each lane takes images l, l + LANES, ... and the
// range's rows; per 4 pixels it loads dout[n, o0+r, y, x0..x0+3] once for the CT sets (4 OQ
// vec4 loads, the most numerous: when OW is not a multiple of 4, as for plain LeNet's conv2,
// OW = 10, dout's rows are read padded, dinp's copy from dxo on when it made one, else
// one padded to a multiple of 4 by pad_rows), and for each set the input values x0 + kx0 ..
// +11 once for the 4 OQ channels (2-3 vec4 loads; the input rows as the forward padded
// them), then does up to 128 OQ multiply-adds per set. The tile with c0 = ky0 = kx0 = 0 also sums dout for dbias.
// Each lane writes its partial sums to part [SPLITS, O, C*KH*KW] and partb [SPLITS, O].
// Pass 2 (reduce_weight): one thread per dweight (then dbias) element sums its SPLITS
// partials. Each thread's loops stay far below 65535 iterations: llvmpipe silently ends
// longer loops.
//
// Overrides: WG threads per workgroup; CQ (1 or 2) channel quads per forward thread, TW
// (pixels per forward thread: 8 with CQ = 1; 4, 8 or 12 with CQ = 2); CT (1 to 3) (c, ky)
// sets per backward_weight tile, OQ (1 or 2) its output channel quads, ALONG_KY (the sets
// are kernel rows), FULL_SETS (every tile has CT sets), W_TAIL (the channels of a single
// tile); TAIL (forward: the channels of a single channel block); ACT (forward: sigmoid or
// ReLU of the biased sum, the activation that follows, fused); KX_LO, KX_HI (forward: the
// taps of this dispatch's pixel blocks that read real values); ZEROS (forward: the vec4s
// of the blocks' windows that hold only padding, not loaded); W_UNIFORM; KH, KW (0 = read
// from the uniform); UNIT_STRIDE (SH = SW = 1); OUT_ALIGNED (OW a multiple of 4: the
// forward's out rows are vec4s); HAS_BIAS.
//
// Bindings (binding i = the i-th of each entry point's list):
//   pad_rows(_scalar)      0 params, 1 inp,     2 rows
//   pack_weight(_flipped)  0 params, 1 weight,  2 wpack
//   forward                0 params, 1 rows,    2 wpack (uniform), 3 out,  4 bias, 5 wpack (storage)
//   backward_weight        0 params, 1 rows,    2 dout rows, 3 part,   4 partb
//   reduce_weight          0 params, 1 part,    2 partb,   3 dweight,  4 dbias
// Overrides that look redundant with the params (KH, KW, TAIL, FULL_SETS) are there to fold
// tests inside the pixel and tap loops at compile time: uniform tests left to run time there
// cost llvmpipe up to 1.6x (backward_weight takes KW when it is at most 8).
// Dispatch: forward [ceil(N / WG), pixel blocks (OH * QW, QW = ceil(OW / TW)), channel
// blocks O4 / (4 CQ)], pixel blocks past 65535 spilling into z; backward_weight
// [grid(tiles), ranges * LANES / WG]; the 1-D kernels grid(ceil(total / WG)).
// Gradients overwrite (fresh tensors); the autograd tape sums them.

override WG: u32 = 64u;
override UNIT_STRIDE: bool = true;
override OUT_ALIGNED: bool = false;
override HAS_BIAS: bool = true;
override CQ: u32 = 2u;        // channel quads per forward thread (1 or 2)
override TW: u32 = 4u;        // forward: pixels per thread (CQ = 1: 8; CQ = 2: 4, 8 or 12)
override TAIL: u32 = 8u;      // forward: output channels of a single channel block (else 4 CQ)
override W_UNIFORM: bool = true; // forward reads the packed weight as a uniform buffer
override KH: u32 = 0u;
override KW: u32 = 0u;
override CT: u32 = 1u;        // backward_weight: (c, ky) sets per tile (1 to 3; 1 unless unit stride)
override OQ: u32 = 1u;        // backward_weight: output channel quads per tile (1 or 2; 1 unless unit stride)
override ALONG_KY: bool = false; // backward_weight: the sets are kernel rows (C = 1), not channels
override W_TAIL: u32 = 8u;    // backward_weight: output channels of a single tile (else 4 OQ)
override FULL_SETS: bool = false; // backward_weight: CT divides C (or KH along ky)
override ACT: u32 = 0u;       // forward: the activation applied on store (0 none, 1 ReLU, 2 sigmoid)
override XLANES: bool = false; // forward: lanes over (image, pixel block of a row), not images
override KX_LO: u32 = 0u;     // forward, KW <= 8: the pixel blocks' taps that read real values,
override KX_HI: u32 = 0xffffffffu; // kx in [KX_LO, KX_HI) (the others read only padding)
override ZEROS: u32 = 0u;     // forward, KW <= 8: bit j, vec4 j of every block's window is padding

struct Params {
  n: u32, c: u32, h: u32, w: u32,
  o: u32, oh: u32, ow: u32, kh: u32,
  kw: u32, sh: u32, sw: u32,
  o4: u32,     // channels per wpack row: O rounded up to 4 CQ (C for pack_weight_flipped)
  ph: i32, pw: i32,
  qw: u32,     // forward: pixel blocks (TW pixels) per output row
  total: u32,  // threads with work (1-D kernels); forward: N
  splits: u32, // backward_weight: number of partial sums, images x row ranges
  rows: u32,   // backward_weight: output rows y per row range
  tiles: u32,  // backward_weight: ceil(O / 4) * CB * KB * KXB (see backward_weight)
  kxb: u32,    // backward_weight: KXB = ceil(KW / 8)
  wp: u32,     // padded input row length, a multiple of 4 (forward, backward_weight, pad_rows)
  pl: i32,     // pad_rows: zeros before each row
  lanes: u32,  // backward_weight: image splits (a lane takes images l, l + lanes, ...)
  dwp: u32,    // backward_weight: dout row length, OW rounded up to 4 (rows zero-padded)
  xb0: u32,    // forward: the first pixel of each row this dispatch computes (its first block's)
  dxo: u32,    // backward_weight: where dout's values start in its rows (a multiple of 4)
}

@group(0) @binding(0) var<uniform> p: Params;

// forward (and backward_weight's inp): padded input rows [N, C, H, WP]
@group(0) @binding(1) var<storage, read> inp: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> wu: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> ws: array<vec4<f32>>;

// pack_weight, pack_weight_flipped
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> wpack_out: array<f32>;

// pad_rows, pad_rows_scalar
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> src1: array<f32>;
@group(0) @binding(2) var<storage, read_write> prows: array<vec4<f32>>;

// backward_weight
@group(0) @binding(2) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<storage, read_write> partb: array<f32>;

// reduce_weight
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
// Padding: prows[r, j] = inp[r, j - PL] for PL <= j < PL + W, else 0, over the N*C*H rows.
// One thread per row, looping over its vec4s: which values of a vec4 lie inside the row is
// then the same for every thread (uniform tests, no per-thread division). pad_rows when W
// and PL are multiples of 4 (whole vec4s in or out), else pad_rows_scalar (value by value).
// Two entry points because they bind the source as vec4s and as floats (one variable per
// binding in an entry point); value by value for every row took 1.39-1.42x the time of
// pad_rows on LeNet+BN's conv2 dout (8 -> 16; interleaved medians of 7 rounds, 2 runs).

@compute @workgroup_size(WG)
fn pad_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = linear_id(wid, nwg, lid);
  if (r >= p.total) { return; }
  let wp4 = p.wp / 4u;
  for (var j = 0u; j < wp4; j++) {
    let j0 = i32(j * 4u) - p.pl;
    var v = vec4<f32>(0.0);
    if (j0 >= 0 && j0 < i32(p.w)) { v = src4[(r * p.w + u32(j0)) / 4u]; }
    prows[r * wp4 + j] = v;
  }
}

@compute @workgroup_size(WG)
fn pad_rows_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = linear_id(wid, nwg, lid);
  if (r >= p.total) { return; }
  let wp4 = p.wp / 4u;
  for (var j = 0u; j < wp4; j++) {
    let j0 = i32(j * 4u) - p.pl;
    var v = vec4<f32>(0.0);
    if (j0 >= 0 && j0 < i32(p.w)) { v.x = src1[r * p.w + u32(j0)]; }
    if (j0 + 1 >= 0 && j0 + 1 < i32(p.w)) { v.y = src1[r * p.w + u32(j0 + 1)]; }
    if (j0 + 2 >= 0 && j0 + 2 < i32(p.w)) { v.z = src1[r * p.w + u32(j0 + 2)]; }
    if (j0 + 3 >= 0 && j0 + 3 < i32(p.w)) { v.w = src1[r * p.w + u32(j0 + 3)]; }
    prows[r * wp4 + j] = v;
  }
}

// ---------------------------------------------------------------------------------------
// Forward.

// The packed weights of tap k for channel quad cq: a vec4 over 4 output channels.
fn wrow(k: u32, cq: u32) -> vec4<f32> {
  let i = k * (p.o4 / 4u) + cq;
  if (W_UNIFORM) { return wu[i]; }
  return ws[i];
}

// A forward accumulator: one vec4 of the thread's tile (see forward).
alias Acc = ptr<function, vec4<f32>>;

// acc[r] += w[r] * s for the first `nv` (uniform) of the 4 channels of w: one tap for 4
// channels x 4 pixels; channels past O (the last block's padding) are skipped.
fn quad(a0: Acc, a1: Acc, a2: Acc, a3: Acc, w: vec4<f32>, s: vec4<f32>, nv: u32) {
  if (nv > 0u) { *a0 += w.x * s; }
  if (nv > 1u) { *a1 += w.y * s; }
  if (nv > 2u) { *a2 += w.z * s; }
  if (nv > 3u) { *a3 += w.w * s; }
}

// One tap for 8 channels (CQ = 2, weights w of quad 0 and w1 of quad 1) x 4 pixels, whose
// input values are s.
fn octet(a0: Acc, a1: Acc, a2: Acc, a3: Acc, a4: Acc, a5: Acc, a6: Acc, a7: Acc,
         w: vec4<f32>, w1: vec4<f32>, s: vec4<f32>) {
  quad(a0, a1, a2, a3, w, s, live(0u));
  quad(a4, a5, a6, a7, w1, s, live(1u));
}

// One tap k of the thread's tile (see forward): pixels x0..x0+3 see the input values s0,
// x0+4..x0+7 s1 (CQ = 1, or TW >= 8), x0+8..x0+11 s2 (TW = 12).
fn tap(a0: Acc, a1: Acc, a2: Acc, a3: Acc, a4: Acc, a5: Acc, a6: Acc, a7: Acc,
       b0: Acc, b1: Acc, b2: Acc, b3: Acc, b4: Acc, b5: Acc, b6: Acc, b7: Acc,
       c0: Acc, c1: Acc, c2: Acc, c3: Acc, c4: Acc, c5: Acc, c6: Acc, c7: Acc,
       k: u32, ob: u32, s0: vec4<f32>, s1: vec4<f32>, s2: vec4<f32>) {
  let w = wrow(k, ob * CQ);
  if (CQ == 1u) {
    quad(a0, a1, a2, a3, w, s0, live(0u));
    quad(a4, a5, a6, a7, w, s1, live(0u));
    return;
  }
  let w1 = wrow(k, ob * 2u + 1u);
  octet(a0, a1, a2, a3, a4, a5, a6, a7, w, w1, s0);
  if (TW >= 8u) { octet(b0, b1, b2, b3, b4, b5, b6, b7, w, w1, s1); }
  if (TW == 12u) { octet(c0, c1, c2, c3, c4, c5, c6, c7, w, w1, s2); }
}

// The channels of quad q of a thread's block that exist: TAIL, the channels of a single
// channel block (4 CQ when there are several), counted from quad 0. An override, so that
// the tests in quad() fold away: tested per block at run time they made the kernel up to
// 1.6x slower.
fn live(q: u32) -> u32 {
  return min(TAIL - min(TAIL, 4u * q), 4u);
}

// Up to 4 taps kx0, kx0+1, .. (`left` of them, k the first's) of the TW pixels, whose values
// for tap kx0 are the window v0, v1, v2 (TW / 4 of them) and for the later taps the window
// shifted along v0 .. v3. Taps outside [KX_LO, KX_HI) read only padding and are skipped
// (with kx0 and `left` constants, as when KW <= 8, every test folds).
fn taps(a0: Acc, a1: Acc, a2: Acc, a3: Acc, a4: Acc, a5: Acc, a6: Acc, a7: Acc,
        b0: Acc, b1: Acc, b2: Acc, b3: Acc, b4: Acc, b5: Acc, b6: Acc, b7: Acc,
        c0: Acc, c1: Acc, c2: Acc, c3: Acc, c4: Acc, c5: Acc, c6: Acc, c7: Acc,
        k: u32, kx0: u32, ob: u32, left: u32,
        v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) {
  if (uses_tap(kx0)) {
    tap(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7,
        c0, c1, c2, c3, c4, c5, c6, c7, k, ob, v0, v1, v2);
  }
  if (left > 1u && uses_tap(kx0 + 1u)) {
    tap(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7,
        c0, c1, c2, c3, c4, c5, c6, c7, k + 1u, ob, sh1(v0, v1), sh1(v1, v2), sh1(v2, v3));
  }
  if (left > 2u && uses_tap(kx0 + 2u)) {
    tap(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7,
        c0, c1, c2, c3, c4, c5, c6, c7, k + 2u, ob, sh2(v0, v1), sh2(v1, v2), sh2(v2, v3));
  }
  if (left > 3u && uses_tap(kx0 + 3u)) {
    tap(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7,
        c0, c1, c2, c3, c4, c5, c6, c7, k + 3u, ob, sh3(v0, v1), sh3(v1, v2), sh3(v2, v3));
  }
}

// Up to 4 taps kx0, .. (`left` of them, k the first's) of the TW pixels whose window starts
// at the padded row's value `at` (a multiple of 4): TW / 4 + 1 aligned vec4 loads for all.
fn tap_block(a0: Acc, a1: Acc, a2: Acc, a3: Acc, a4: Acc, a5: Acc, a6: Acc, a7: Acc,
             b0: Acc, b1: Acc, b2: Acc, b3: Acc, b4: Acc, b5: Acc, b6: Acc, b7: Acc,
             c0: Acc, c1: Acc, c2: Acc, c3: Acc, c4: Acc, c5: Acc, c6: Acc, c7: Acc,
             at: u32, k: u32, kx0: u32, ob: u32, left: u32) {
  let i = at / 4u;
  let v0 = inp[i];
  let v1 = inp[i + 1u];
  var v2 = vec4<f32>(0.0);
  var v3 = vec4<f32>(0.0);
  if (TW >= 8u) { v2 = inp[i + 2u]; }
  if (TW == 12u) { v3 = inp[i + 3u]; }
  taps(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7,
        c0, c1, c2, c3, c4, c5, c6, c7, k, kx0, ob, left, v0, v1, v2, v3);
}

// All KW taps (KW <= 8, an override) of the TW pixels whose window starts at the padded
// row's value `at` (a multiple of 4). Taps 4.. read the values of taps 0.. one vec4 later,
// so the row's vec4s are loaded once for both blocks of taps: TW / 4 + 1, and one more
// when a tap past the fifth needs it (KW = 5: tap 4 reads no value of its own). Either
// block is skipped, loads too, when its taps read only padding.
fn tap_row(a0: Acc, a1: Acc, a2: Acc, a3: Acc, a4: Acc, a5: Acc, a6: Acc, a7: Acc,
           b0: Acc, b1: Acc, b2: Acc, b3: Acc, b4: Acc, b5: Acc, b6: Acc, b7: Acc,
           c0: Acc, c1: Acc, c2: Acc, c3: Acc, c4: Acc, c5: Acc, c6: Acc, c7: Acc,
           at: u32, k: u32, ob: u32) {
  let lo = KX_LO < 4u && KX_HI > 0u; // taps 0 .. 3 read real values
  let hi = KW > 4u && KX_HI > 4u;    // taps 4 .. KW-1 do
  let i = at / 4u;
  var v0 = vec4<f32>(0.0);
  var v1 = v0; var v2 = v0; var v3 = v0; var v4 = v0;
  if (row_reads(0u, lo, hi)) { v0 = inp[i]; }
  if (row_reads(1u, lo, hi)) { v1 = inp[i + 1u]; }
  if (row_reads(2u, lo, hi)) { v2 = inp[i + 2u]; }
  if (row_reads(3u, lo, hi)) { v3 = inp[i + 3u]; }
  if (row_reads(4u, lo, hi)) { v4 = inp[i + 4u]; }
  if (lo) {
    taps(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7,
         c0, c1, c2, c3, c4, c5, c6, c7, k, 0u, ob, min(KW, 4u), v0, v1, v2, v3);
  }
  if (hi) {
    taps(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7,
         c0, c1, c2, c3, c4, c5, c6, c7, k + 4u, 4u, ob, KW - 4u, v1, v2, v3, v4);
  }
}

// Whether tap_row reads vec4 j of the row: the low block (taps 0 .. 3, when `lo`) reads
// vec4s 0 .. TW / 4, the high one (taps 4 .., when `hi`) vec4s 1 .. TW / 4, and one more
// when it has a tap past the fifth; not one that holds only the row's padding in every
// block of the dispatch (ZEROS), which is 0. Constant arguments: every test folds.
fn row_reads(j: u32, lo: bool, hi: bool) -> bool {
  let q = TW / 4u;
  let read = (lo && j <= q) || (hi && j >= 1u && j <= q + select(0u, 1u, KW > 5u));
  return read && (ZEROS & (1u << j)) == 0u;
}

fn uses_tap(kx: u32) -> bool {
  return kx >= KX_LO && kx < KX_HI;
}

// The 4 consecutive values starting 1, 2 or 3 into the 8 values a, b.
fn sh1(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> { return vec4<f32>(a.yzw, b.x); }
fn sh2(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> { return vec4<f32>(a.zw, b.xy); }
fn sh3(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> { return vec4<f32>(a.w, b.xyz); }

fn inp_at(i: u32) -> f32 {
  return inp[i >> 2u][i & 3u];
}

fn store(n: u32, o: u32, y: u32, x: u32, acc: vec4<f32>) {
  if (o >= p.o || x >= p.ow) { return; }
  var v = acc;
  if (HAS_BIAS) { v += bias[o]; }
  if (ACT == 1u) { v = max(v, vec4<f32>(0.0)); }
  if (ACT == 2u) { v = 1.0 / (1.0 + exp(-v)); }
  let base = ((n * p.o + o) * p.oh + y) * p.ow + x;
  if (OUT_ALIGNED) {
    out[base >> 2u] = v;
  } else {
    // A quad may straddle two vec4s shared with neighbouring threads: own lanes only.
    for (var e = 0u; e < 4u; e++) {
      let i = base + e;
      if (x + e < p.ow) { out[i >> 2u][i & 3u] = v[e]; }
    }
  }
}

// Channels o0..o0+7 of pixels x..x+3 (CQ = 2).
fn store_octet(n: u32, o0: u32, y: u32, x: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>,
               a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>) {
  store(n, o0, y, x, a0);
  store(n, o0 + 1u, y, x, a1);
  store(n, o0 + 2u, y, x, a2);
  store(n, o0 + 3u, y, x, a3);
  store(n, o0 + 4u, y, x, a4);
  store(n, o0 + 5u, y, x, a5);
  store(n, o0 + 6u, y, x, a6);
  store(n, o0 + 7u, y, x, a7);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // Lanes run over images: the pixel block (y, x0) and channel block ob are the
  // workgroup's, so every loop bound and weight index is uniform (scalar on llvmpipe).
  // With XLANES (fewer images than a vector has lanes) they run over the images and the
  // run's pixel blocks of one row, lane l taking image l % N and block l / N: the row y
  // and so the loop bounds stay the workgroup's, and more of each vector works.
  let lane = wid.x * WG + lid.x;
  let blocks = p.o4 / (4u * CQ);
  let ob = wid.z % blocks;
  let pb = wid.y + (wid.z / blocks) * 65535u; // pixel block (row with XLANES): more spill into z
  let y = select(pb / p.qw, pb, XLANES);
  let n = select(lane, lane % p.n, XLANES);
  let xb = select(pb - y * p.qw, lane / p.n, XLANES);
  let x0 = p.xb0 + xb * TW;
  if (n >= p.n || xb >= p.qw || y >= p.oh) { return; }
  // The thread's tile of out, TW / 4 * CQ * 4 vec4s. With CQ = 1: a0..a3 channels 0-3 of
  // pixels x0..x0+3, a4..a7 the same channels of pixels x0+4..x0+7. With CQ = 2: a0..a7
  // channels 0-7 of pixels x0..x0+3, b0..b7 (TW >= 8) of pixels x0+4..x0+7, c0..c7
  // (TW = 12) of x0+8..x0+11. Separate variables, not an array or struct: llvmpipe keeps
  // only those in registers. Those the tile lacks are dead code.
  var a0 = vec4<f32>(0.0);
  var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0; var a6 = a0; var a7 = a0;
  var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0; var b4 = a0; var b5 = a0; var b6 = a0;
  var b7 = a0; var c0 = a0; var c1 = a0; var c2 = a0; var c3 = a0; var c4 = a0; var c5 = a0;
  var c6 = a0; var c7 = a0;
  let kh = select(p.kh, KH, KH != 0u);
  let kw = select(p.kw, KW, KW != 0u);
  // taps ky whose input row iy = y*SH - PH + ky lies in [0, H)
  let top = i32(y * p.sh) - p.ph;
  let ky_lo = u32(max(-top, 0));
  let ky_hi = u32(clamp(i32(p.h) - top, 0, i32(kh)));
  for (var c = 0u; c < p.c; c++) {
    for (var ky = ky_lo; ky < ky_hi; ky++) {
      let row = ((n * p.c + c) * p.h + u32(top + i32(ky))) * p.wp;
      let k_row = (c * kh + ky) * kw; // k of (c, ky, kx = 0)
      if (UNIT_STRIDE) {
        // Taps kx0 .. kx0 + 3 of TW pixels read the padded row's values x0 + kx0 ..,
        // TW / 4 + 1 aligned vec4s, loaded once for all of them.
        // Written out tap by tap: llvmpipe keeps values in registers only when every
        // index is a constant, and does not unroll loops for us.
        // KW (an override) up to 8: the two blocks of 4 taps written out (tap_row), so that
        // the tap counts are constants and their tests fold away, on one load of the row.
        // KX_LO / KX_HI: a tap block whose taps all read padding is skipped, loads too.
        if (KW != 0u && KW <= 8u) {
          tap_row(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, &b0, &b1, &b2, &b3, &b4, &b5, &b6,
                  &b7, &c0, &c1, &c2, &c3, &c4, &c5, &c6, &c7, row + x0, k_row, ob);
        } else {
          for (var kx0 = 0u; kx0 < kw; kx0 += 4u) {
            tap_block(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, &b0, &b1, &b2, &b3, &b4, &b5,
                      &b6, &b7, &c0, &c1, &c2, &c3, &c4, &c5, &c6, &c7,
                      row + x0 + kx0, k_row + kx0, kx0, ob, kw - kx0);
          }
        }
      } else {
        for (var kx = 0u; kx < kw; kx++) {
          var s = array<vec4<f32>, 3>();
          for (var e = 0u; e < TW; e++) {
            s[e / 4u][e % 4u] = inp_at(row + (x0 + e) * p.sw + kx);
          }
          tap(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, &b0, &b1, &b2, &b3, &b4, &b5, &b6, &b7,
              &c0, &c1, &c2, &c3, &c4, &c5, &c6, &c7, k_row + kx, ob, s[0], s[1], s[2]);
        }
      }
    }
  }
  let o0 = ob * 4u * CQ;
  if (CQ == 1u) {
    store(n, o0, y, x0, a0);
    store(n, o0 + 1u, y, x0, a1);
    store(n, o0 + 2u, y, x0, a2);
    store(n, o0 + 3u, y, x0, a3);
    store(n, o0, y, x0 + 4u, a4);
    store(n, o0 + 1u, y, x0 + 4u, a5);
    store(n, o0 + 2u, y, x0 + 4u, a6);
    store(n, o0 + 3u, y, x0 + 4u, a7);
    return;
  }
  store_octet(n, o0, y, x0, a0, a1, a2, a3, a4, a5, a6, a7);
  if (TW >= 8u) { store_octet(n, o0, y, x0 + 4u, b0, b1, b2, b3, b4, b5, b6, b7); }
  if (TW == 12u) { store_octet(n, o0, y, x0 + 8u, c0, c1, c2, c3, c4, c5, c6, c7); }
}

// ---------------------------------------------------------------------------------------
// dweight and dbias, pass 1: partial sums over the output rows of one split.

// dout[n, o, y, x0 .. x0+3], zero for pixels past OW: one aligned vec4 of the rows padded
// to DWP (pad_rows on dout when OW % 4 != 0).
fn dout4(n: u32, o: u32, y: u32, x0: u32) -> vec4<f32> {
  return dout[(((n * p.o + o) * p.oh + y) * p.dwp + p.dxo + x0) >> 2u];
}

// One output channel's share of a pixel quad: lo[j] += sum_i d[i] * inp[.., x0 + i + j] for
// taps j = kx0 .. kx0+3, hi the same for the `hi_taps` taps kx0+4 .. (0 to 4), with the input
// window v0, v1, v2 = values x0 + kx0 .. x0 + kx0 + 11. A lone fifth tap (KW = 5, LeNet's) is
// one dot product instead of four vec4 multiply-adds, three of them for absent taps.
fn grad_taps(lo: ptr<function, vec4<f32>>, hi: ptr<function, vec4<f32>>, d: vec4<f32>,
             v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, hi_taps: u32) {
  *lo += d.x * v0 + d.y * sh1(v0, v1) + d.z * sh2(v0, v1) + d.w * sh3(v0, v1);
  if (hi_taps == 1u) { (*hi).x += dot(d, v1); }
  else if (hi_taps > 1u) { *hi += d.x * v1 + d.y * sh1(v1, v2) + d.z * sh2(v1, v2) + d.w * sh3(v1, v2); }
}

fn store_part(split: u32, o: u32, c: u32, ky: u32, kx0: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (o >= p.o) { return; }
  let base = (split * p.o + o) * p.c * p.kh * p.kw + (c * p.kh + ky) * p.kw + kx0;
  for (var j = 0u; j < 4u; j++) {
    if (kx0 + j < p.kw) { part[base + j] = lo[j]; }
    if (kx0 + 4u + j < p.kw) { part[base + 4u + j] = hi[j]; }
  }
}

// Input values x0 + kx0 .. x0 + kx0 + 11 of the padded row at `at` (a multiple of 4), for the
// taps of the tile's 4 OQ channels (d4..d7, lo4.., hi4.. when OQ = 2): v2 only when a tap
// past kx0 + 4 needs it.
fn grad_window(lo0: Acc, lo1: Acc, lo2: Acc, lo3: Acc, lo4: Acc, lo5: Acc, lo6: Acc, lo7: Acc,
               hi0: Acc, hi1: Acc, hi2: Acc, hi3: Acc, hi4: Acc, hi5: Acc, hi6: Acc, hi7: Acc,
               d0: vec4<f32>, d1: vec4<f32>, d2: vec4<f32>, d3: vec4<f32>, d4: vec4<f32>,
               d5: vec4<f32>, d6: vec4<f32>, d7: vec4<f32>, at: u32, hi_taps: u32) {
  let i = at >> 2u;
  let v0 = inp[i];
  let v1 = inp[i + 1u];
  var v2 = vec4<f32>(0.0);
  if (hi_taps > 1u) { v2 = inp[i + 2u]; }
  // W_TAIL (an override): the multiply-adds of a single tile's absent channels fold away
  if (W_TAIL > 0u) { grad_taps(lo0, hi0, d0, v0, v1, v2, hi_taps); }
  if (W_TAIL > 1u) { grad_taps(lo1, hi1, d1, v0, v1, v2, hi_taps); }
  if (W_TAIL > 2u) { grad_taps(lo2, hi2, d2, v0, v1, v2, hi_taps); }
  if (W_TAIL > 3u) { grad_taps(lo3, hi3, d3, v0, v1, v2, hi_taps); }
  if (OQ == 2u) {
    if (W_TAIL > 4u) { grad_taps(lo4, hi4, d4, v0, v1, v2, hi_taps); }
    if (W_TAIL > 5u) { grad_taps(lo5, hi5, d5, v0, v1, v2, hi_taps); }
    if (W_TAIL > 6u) { grad_taps(lo6, hi6, d6, v0, v1, v2, hi_taps); }
    if (W_TAIL > 7u) { grad_taps(lo7, hi7, d7, v0, v1, v2, hi_taps); }
  }
}

// One set's partial sums for the tile's channels o0 .. o0 + 4 OQ - 1.
fn store_set(split: u32, o0: u32, c: u32, ky: u32, kx0: u32,
             lo0: vec4<f32>, lo1: vec4<f32>, lo2: vec4<f32>, lo3: vec4<f32>, lo4: vec4<f32>,
             lo5: vec4<f32>, lo6: vec4<f32>, lo7: vec4<f32>,
             hi0: vec4<f32>, hi1: vec4<f32>, hi2: vec4<f32>, hi3: vec4<f32>, hi4: vec4<f32>,
             hi5: vec4<f32>, hi6: vec4<f32>, hi7: vec4<f32>) {
  store_part(split, o0, c, ky, kx0, lo0, hi0);
  store_part(split, o0 + 1u, c, ky, kx0, lo1, hi1);
  store_part(split, o0 + 2u, c, ky, kx0, lo2, hi2);
  store_part(split, o0 + 3u, c, ky, kx0, lo3, hi3);
  if (OQ == 2u) {
    store_part(split, o0 + 4u, c, ky, kx0, lo4, hi4);
    store_part(split, o0 + 5u, c, ky, kx0, lo5, hi5);
    store_part(split, o0 + 6u, c, ky, kx0, lo6, hi6);
    store_part(split, o0 + 7u, c, ky, kx0, lo7, hi7);
  }
}

// The input row iy = y*SH + ky - PH of channel c of image n: where its padded values start
// (`at`), and whether the set exists and the row lies inside the input (`inside`).
struct GradRow { at: u32, inside: bool }

fn grad_row(n: u32, c: u32, ky: u32, y: u32, exists: bool) -> GradRow {
  let iy = i32(y * p.sh + ky) - p.ph;
  let row = (n * p.c + c) * p.h + u32(clamp(iy, 0, i32(p.h) - 1));
  return GradRow(row * p.wp, exists && iy >= 0 && iy < i32(p.h));
}

// Workgroup (tile, image group, row range): the tile (4 OQ output channels o0.., CT sets of
// (input channel, kernel row), taps kx0 .. kx0+7) and the output rows y are the
// workgroup's, so every tap index, loop bound and row test is uniform; its WG lanes take
// different images, each summing its own partial. The 4 OQ dout vec4s of a pixel quad are
// loaded once for the CT sets, and each set's input values once for the 4 OQ channels: the
// sets are CT input channels c0.. of one ky, or with ALONG_KY (C = 1, a first layer) CT
// kernel rows ky0.. of one c.
@compute @workgroup_size(WG)
fn backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = wid.x + wid.y * nwg.x;
  let groups = p.lanes / WG;
  let range = wid.z / groups;
  let lane = (wid.z - range * groups) * WG + lid.x;
  let split = range * p.lanes + lane;
  if (tile >= p.tiles) { return; }
  // tile = ((ob * CB + cb) * KB + kb) * KXB + kxb: CB = ceil(C / CT), KB = KH (sets along c),
  // or CB = C, KB = ceil(KH / CT) (ALONG_KY)
  let cb_count = select((p.c + CT - 1u) / CT, p.c, ALONG_KY);
  let kb_count = select(p.kh, (p.kh + CT - 1u) / CT, ALONG_KY);
  // KW (an override) up to 8: one tap block, so kx0 and hi_taps are constants
  let kx0 = select((tile % p.kxb) * 8u, 0u, KW != 0u && KW <= 8u);
  let kw = select(p.kw, KW, KW != 0u);
  let kb = (tile / p.kxb) % kb_count;
  let cb = (tile / (p.kxb * kb_count)) % cb_count;
  let o0 = (tile / (p.kxb * kb_count * cb_count)) * 4u * OQ;
  // set j: input channel c_j, kernel row ky_j
  let c_0 = select(cb * CT, cb, ALONG_KY);
  let ky_0 = select(kb, kb * CT, ALONG_KY);
  let c_1 = select(c_0 + 1u, c_0, ALONG_KY);
  let ky_1 = select(ky_0, ky_0 + 1u, ALONG_KY);
  let c_2 = select(c_0 + 2u, c_0, ALONG_KY);
  let ky_2 = select(ky_0, ky_0 + 2u, ALONG_KY);
  // FULL_SETS (an override): every tile has its CT sets
  let has_1 = CT >= 2u && (FULL_SETS || (c_1 < p.c && ky_1 < p.kh));
  let has_2 = CT == 3u && (FULL_SETS || (c_2 < p.c && ky_2 < p.kh));
  let sums_bias = c_0 == 0u && ky_0 == 0u && kx0 == 0u;
  let hi_taps = min(kw - kx0, 8u) - min(kw - kx0, 4u); // taps kx0+4 .. of this tile
  // lo_r / hi_r: partial dweight[o0 + r, c_0, ky_0, kx0 .. kx0+3 / kx0+4 .. kx0+7] (r < 4 OQ);
  // lo_r_j / hi_r_j the same for set j
  var lo0 = vec4<f32>(0.0);
  var lo1 = lo0; var lo2 = lo0; var lo3 = lo0; var lo4 = lo0; var lo5 = lo0; var lo6 = lo0;
  var lo7 = lo0; var hi0 = lo0; var hi1 = lo0; var hi2 = lo0; var hi3 = lo0; var hi4 = lo0;
  var hi5 = lo0; var hi6 = lo0; var hi7 = lo0; var lo0_1 = lo0; var lo1_1 = lo0; var lo2_1 = lo0;
  var lo3_1 = lo0; var lo4_1 = lo0; var lo5_1 = lo0; var lo6_1 = lo0; var lo7_1 = lo0;
  var hi0_1 = lo0; var hi1_1 = lo0; var hi2_1 = lo0; var hi3_1 = lo0; var hi4_1 = lo0;
  var hi5_1 = lo0; var hi6_1 = lo0; var hi7_1 = lo0; var lo0_2 = lo0; var lo1_2 = lo0;
  var lo2_2 = lo0; var lo3_2 = lo0; var lo4_2 = lo0; var lo5_2 = lo0; var lo6_2 = lo0;
  var lo7_2 = lo0; var hi0_2 = lo0; var hi1_2 = lo0; var hi2_2 = lo0; var hi3_2 = lo0;
  var hi4_2 = lo0; var hi5_2 = lo0; var hi6_2 = lo0; var hi7_2 = lo0;
  var db = vec4<f32>(0.0);  // dbias, channels o0 .. o0+3
  var db4 = db;             // o0+4 .. o0+7 (OQ = 2)
  let y_end = min((range + 1u) * p.rows, p.oh);
  for (var n = lane; n < p.n; n += p.lanes) {
   for (var y = range * p.rows; y < y_end; y++) {
    let r0 = grad_row(n, c_0, ky_0, y, true);
    let r1 = grad_row(n, c_1, ky_1, y, has_1);
    let r2 = grad_row(n, c_2, ky_2, y, has_2);
    // Sets of channels share their row: written as r0's test, the three tests fold into one
    let in1 = select(r1.inside, has_1 && r0.inside, !ALONG_KY);
    let in2 = select(r2.inside, has_2 && r0.inside, !ALONG_KY);
    if (!(r0.inside || in1 || in2) && !sums_bias) { continue; }
    for (var x0 = 0u; x0 < p.ow; x0 += 4u) {
      let d0 = dout4(n, o0, y, x0);
      var d1 = vec4<f32>(0.0);
      var d2 = d1; var d3 = d1; var d4 = d1; var d5 = d1; var d6 = d1; var d7 = d1;
      if (o0 + 1u < p.o) { d1 = dout4(n, o0 + 1u, y, x0); }
      if (o0 + 2u < p.o) { d2 = dout4(n, o0 + 2u, y, x0); }
      if (o0 + 3u < p.o) { d3 = dout4(n, o0 + 3u, y, x0); }
      if (OQ == 2u) {
        if (o0 + 4u < p.o) { d4 = dout4(n, o0 + 4u, y, x0); }
        if (o0 + 5u < p.o) { d5 = dout4(n, o0 + 5u, y, x0); }
        if (o0 + 6u < p.o) { d6 = dout4(n, o0 + 6u, y, x0); }
        if (o0 + 7u < p.o) { d7 = dout4(n, o0 + 7u, y, x0); }
      }
      if (sums_bias) {
        let one = vec4<f32>(1.0);
        db += vec4<f32>(dot(d0, one), dot(d1, one), dot(d2, one), dot(d3, one));
        if (OQ == 2u) {
          db4 += vec4<f32>(dot(d4, one), dot(d5, one), dot(d6, one), dot(d7, one));
        }
      }
      if (UNIT_STRIDE) {
        // for pixel i and tap j the padded input value x0 + kx0 + i + j of each set's row
        let x = x0 + kx0;
        if (r0.inside) {
          grad_window(&lo0, &lo1, &lo2, &lo3, &lo4, &lo5, &lo6, &lo7,
                      &hi0, &hi1, &hi2, &hi3, &hi4, &hi5, &hi6, &hi7,
                      d0, d1, d2, d3, d4, d5, d6, d7, r0.at + x, hi_taps);
        }
        if (in1) {
          grad_window(&lo0_1, &lo1_1, &lo2_1, &lo3_1, &lo4_1, &lo5_1, &lo6_1, &lo7_1,
                      &hi0_1, &hi1_1, &hi2_1, &hi3_1, &hi4_1, &hi5_1, &hi6_1, &hi7_1,
                      d0, d1, d2, d3, d4, d5, d6, d7, r1.at + x, hi_taps);
        }
        if (in2) {
          grad_window(&lo0_2, &lo1_2, &lo2_2, &lo3_2, &lo4_2, &lo5_2, &lo6_2, &lo7_2,
                      &hi0_2, &hi1_2, &hi2_2, &hi3_2, &hi4_2, &hi5_2, &hi6_2, &hi7_2,
                      d0, d1, d2, d3, d4, d5, d6, d7, r2.at + x, hi_taps);
        }
      } else if (r0.inside) {
        // Other strides (CT = 1, OQ = 1): pixel i, taps kx0 + j gathered as win_i[j];
        // lo / hi over j
        let row = r0.at;
        for (var i = 0u; i < 4u; i++) {
          var wl = vec4<f32>(0.0);
          var wh = vec4<f32>(0.0);
          for (var j = 0u; j < 4u; j++) {
            wl[j] = inp_at(row + (x0 + i) * p.sw + kx0 + j);
            wh[j] = inp_at(row + (x0 + i) * p.sw + kx0 + 4u + j);
          }
          lo0 += d0[i] * wl; hi0 += d0[i] * wh;
          lo1 += d1[i] * wl; hi1 += d1[i] * wh;
          lo2 += d2[i] * wl; hi2 += d2[i] * wh;
          lo3 += d3[i] * wl; hi3 += d3[i] * wh;
        }
      }
    }
   }
  }
  // Lanes past the last image store their zeros: pass 2 sums every partial.
  store_set(split, o0, c_0, ky_0, kx0, lo0, lo1, lo2, lo3, lo4, lo5, lo6, lo7,
            hi0, hi1, hi2, hi3, hi4, hi5, hi6, hi7);
  if (has_1) {
    store_set(split, o0, c_1, ky_1, kx0, lo0_1, lo1_1, lo2_1, lo3_1, lo4_1, lo5_1, lo6_1,
              lo7_1, hi0_1, hi1_1, hi2_1, hi3_1, hi4_1, hi5_1, hi6_1, hi7_1);
  }
  if (has_2) {
    store_set(split, o0, c_2, ky_2, kx0, lo0_2, lo1_2, lo2_2, lo3_2, lo4_2, lo5_2, lo6_2,
              lo7_2, hi0_2, hi1_2, hi2_2, hi3_2, hi4_2, hi5_2, hi6_2, hi7_2);
  }
  if (HAS_BIAS && sums_bias) {
    for (var r = 0u; r < 4u; r++) {
      if (o0 + r < p.o) { partb[split * p.o + o0 + r] = db[r]; }
      if (OQ == 2u && o0 + 4u + r < p.o) { partb[split * p.o + o0 + 4u + r] = db4[r]; }
    }
  }
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

