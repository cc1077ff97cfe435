// One SGD step with momentum and weight decay, in place, PyTorch's update
// (torch.optim.SGD, dampening 0, no Nesterov):
//
//   g    = grad + weight_decay * param
//   buf  = momentum * buf + g        (buf = g on the first step)
//   param -= lr * buf                (with momentum 0: param -= lr * g, no buf)
//
// Thread-to-data mapping: one thread per vec4 (elements 4t .. 4t+3); pooled buffers are
// padded to 256 bytes, so the last vec4 is in bounds (its padding lanes are don't-care).
// Updating the parameter in place is safe: launches run in the order they were encoded, so
// every earlier read of the parameter (forward, backward) has happened before this write.
//
// Bindings: 0 params (uniform), 1 param (read_write), 2 grad, 3 buf (read_write; bound and
// untouched when MOMENTUM = 0). Dispatch: ceil(n4 / WG) workgroups split over x and y.

override WG: u32 = 256u;
override MOMENTUM: bool = false; // keep a momentum buffer
override FIRST: bool = false;    // first step: buf = g

struct Params {
  n4: u32,
  lr: f32,
  momentum: f32,
  weight_decay: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> buf: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n4) { return; }
  let w = param[i];
  var g = grad[i] + p.weight_decay * w;
  if (MOMENTUM) {
    if (!FIRST) { g += p.momentum * buf[i]; }
    buf[i] = g;
  }
  param[i] = w - p.lr * g;
}
