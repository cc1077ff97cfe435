// Batch gather: one minibatch of images and labels, picked by a permutation from a whole
// dataset kept on the GPU as bytes, with pixels scaled from [0, 255] to [0, 1].
//
//   out[b, k]  = inp[perm[start + b], k] / 255      b < batch, k < pixels (= rows * cols)
//   label[b]   = f32(labels[perm[start + b]])       (class index as a float)
//
// The dataset's bytes are packed four to a u32 (little-endian: byte i is bits 8 * (i % 4)
// of word i / 4), as they were uploaded from a Uint8Array, so no repacking happens on the host.
//
// Thread mapping: one thread per four consecutive output values (one vec4 of `out`),
// counted over the flat [batch * pixels] output; the first `batch` threads also write one
// label each. When pixels % 4 == 0 (28 * 28 = 784) an image starts on a word boundary and
// a thread reads exactly one u32 and unpacks it with unpack4x8unorm (which is byte / 255);
// otherwise each of its four values is fetched separately. When batch * pixels is not a
// multiple of 4, the last vec4 pads with zeros past the tensor's end: the pool's buffers
// are rounded up to 256 bytes, so that write stays inside the buffer.
//
// Bindings: 0 params (uniform), 1 inp (packed bytes, [n * pixels]), 2 labels (packed
// bytes, [n]), 3 perm (u32, the epoch's order), 4 out (vec4<f32>, [batch, pixels]),
// 5 label (f32, [batch]).
// Dispatch: ceil(max(quads, batch) / WG) workgroups over x and y
// (linear id = wid.x + wid.y * num_workgroups.x).

override WG: u32 = 64u;

struct Params {
  batch: u32,  // examples in this batch
  pixels: u32, // bytes per example
  start: u32,  // position of the batch's first example in perm
  quads: u32,  // ceil(batch * pixels / 4): vec4s of out to write
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> perm: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> label: array<f32>;

// Byte i of the packed pixel bytes, as a float in [0, 1].
fn pixel(i: u32) -> f32 {
  return f32((inp[i / 4u] >> (8u * (i % 4u))) & 0xffu) / 255.0;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * WG + lid;
  if (t < p.batch) {
    let e = perm[p.start + t];
    label[t] = f32((labels[e / 4u] >> (8u * (e % 4u))) & 0xffu);
  }
  if (t >= p.quads) { return; }
  let o = 4u * t; // first flat output index of this thread
  if (p.pixels % 4u == 0u) {
    let b = o / p.pixels;
    let src = perm[p.start + b] * p.pixels + o % p.pixels;
    out[t] = unpack4x8unorm(inp[src / 4u]);
    return;
  }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let q = o + j;
    if (q < p.batch * p.pixels) {
      let b = q / p.pixels;
      v[j] = pixel(perm[p.start + b] * p.pixels + q % p.pixels);
    }
  }
  out[t] = v;
}
