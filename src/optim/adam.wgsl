// One Adam or AdamW step, in place, PyTorch's update (torch.optim.Adam / AdamW, one
// tensor at a time, maximize off), for parameters at their step t (1 on the first):
//
//   DECOUPLED (AdamW):  param *= 1 - lr * weight_decay
//   else (Adam):        g = grad + weight_decay * param
//   m     = beta1 * m + (1 - beta1) * g                 (exp_avg; 0 before the first step)
//   v     = beta2 * v + (1 - beta2) * g * g             (exp_avg_sq)
//   vmax  = max(vmax, v)                                (AMSGRAD: max_exp_avg_sq; v below is vmax)
//   param -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
//
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t), the bias
// corrections, computed in float64 on the host for the launch's t. The optimizer keeps the
// parameters, gradients and moments in flat buffers (each parameter at a multiple of 64
// floats; see src/optim/optimizer.ts) and launches this kernel once per run of parameters
// at the same step.
//
// Thread-to-data mapping: one thread per vec4, elements 4(base4 + t) .. +3 of the flat
// buffers, t < n4.
//
// Bindings: 0 params (uniform), 1 param (read_write), 2 grad, 3 exp_avg, 4 exp_avg_sq,
// 5 max_exp_avg_sq (read_write; bound and untouched unless AMSGRAD).
// Dispatch: ceil(n4 / WG) workgroups split over x and y.

override WG: u32 = 256u;
override DECOUPLED: bool = false; // AdamW's weight decay
override AMSGRAD: bool = false;   // keep the maximum of v

struct Params {
  n4: u32,    // vec4s this launch updates
  base4: u32, // the first one
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  step_size: f32,
  bc2_sqrt: f32,
  first: u32, // 1 on the first step: the moments start at 0
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> exp_avg: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> exp_avg_sq: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> max_exp_avg_sq: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= p.n4) { return; }
  let i = p.base4 + t;
  var w = param[i];
  var g = grad[i];
  if (DECOUPLED) {
    w = w * (1.0 - p.lr * p.weight_decay);
  } else {
    g = g + p.weight_decay * w;
  }
  var m = vec4<f32>(0.0);
  var v = vec4<f32>(0.0);
  if (p.first == 0u) {
    m = exp_avg[i];
    v = exp_avg_sq[i];
  }
  m = m + (g - m) * (1.0 - p.beta1); // PyTorch's lerp_(g, 1 - beta1)
  v = p.beta2 * v + (1.0 - p.beta2) * g * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  var vhat = v;
  if (AMSGRAD) {
    if (p.first == 0u) { vhat = max(max_exp_avg_sq[i], v); }
    max_exp_avg_sq[i] = vhat;
  }
  param[i] = w - p.step_size * (m / (sqrt(vhat) / p.bc2_sqrt + p.eps));
}
