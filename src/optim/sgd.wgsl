// One SGD step with momentum, dampening, Nesterov and weight decay, in place, PyTorch's
// update (torch.optim.SGD):
//
//   g    = grad + weight_decay * param
//   buf  = momentum * buf + (1 - dampening) * g   (buf = g on the first step)
//   g    = g + momentum * buf                     (NESTEROV; else g = buf)
//   param -= lr * g                               (with momentum 0: no buf)
//
// The optimizer copies every parameter and its gradient into flat buffers (each parameter at
// a multiple of 64 floats, the gaps holding whatever was there, updated and never copied
// back), launches this kernel once per run of parameters, and copies the parameters back.
//
// Thread-to-data mapping: one thread per vec4, elements 4(base4 + t) .. +3 of the flat
// buffers, t < n4. Launches run in the order they were encoded, so every earlier read of a
// parameter (forward, backward) has happened before its copy in.
//
// Bindings: 0 params (uniform), 1 param (read_write), 2 grad, 3 buf (read_write; bound and
// untouched when MOMENTUM = 0). Dispatch: ceil(n4 / WG) workgroups split over x and y.

override WG: u32 = 256u;
override MOMENTUM: bool = false; // keep a momentum buffer
override FIRST: bool = false;    // first step: buf = g
override NESTEROV: bool = false; // step along g + momentum * buf

struct Params {
  n4: u32,    // vec4s this launch updates
  base4: u32, // the first one
  lr: f32,
  momentum: f32,
  weight_decay: f32,
  dampening: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> buf: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= p.n4) { return; }
  let i = p.base4 + t;
  let w = param[i];
  var g = grad[i] + p.weight_decay * w;
  if (MOMENTUM) {
    var b = g;
    if (!FIRST) { b = p.momentum * buf[i] + (1.0 - p.dampening) * g; }
    buf[i] = b;
    if (NESTEROV) { g = g + p.momentum * b; } else { g = b; }
  }
  param[i] = w - p.lr * g;
}
