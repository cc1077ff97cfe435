#!/usr/bin/env bash
# The training bench on a machine with a real GPU, in one go (issue 10, "On a real GPU"):
# what the machine has, the kernel tests on its adapter (correctness first), the same tests
# in Chromium on that GPU (Dawn and Tint; issue 21), then the LeNet step throughput of both
# models and the per-layer table. Writes its report to $OUT/gpu_check.txt (default: the
# current directory). A GPU runs the plain schedules (src/gpu/profile.ts): nobody has
# measured a tuned one there.
#
# Run from anywhere: bash bench/train/gpu_check.sh
# Deno's WebGPU (wgpu) drives a GPU through Vulkan on Linux: it needs the Vulkan loader
# (libvulkan1) and the vendor's driver with its Vulkan ICD (for NVIDIA, the driver package
# that installs /usr/share/vulkan/icd.d/nvidia_icd.json). Without them Deno falls back to
# llvmpipe, which the script reports rather than timing the CPU by mistake.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-.}/gpu_check.txt"
exec > >(tee "$out") 2>&1

echo "== machine"
uname -a
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
lscpu | grep -E "Model name|^CPU\(s\)" || true
if ! command -v deno >/dev/null; then
  echo "deno is not on PATH: install Deno 2.x and rerun"
  exit 2
fi
deno --version | head -1
ldconfig -p 2>/dev/null | grep -q "libvulkan.so.1" || {
  echo "no Vulkan loader (libvulkan.so.1): trying apt-get install libvulkan1"
  apt-get install -y libvulkan1 >/dev/null 2>&1 || echo "could not install libvulkan1"
}
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null

echo "== adapter"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
deno eval '
const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
if (!a) { console.log("no WebGPU adapter"); Deno.exit(3); }
console.log(JSON.stringify(a.info));
if (a.info.isFallbackAdapter || /llvmpipe/.test(a.info.description)) {
  console.log("this is the CPU fallback adapter, not a GPU: check the Vulkan ICD");
  Deno.exit(3);
}' || exit 3

echo "== kernel tests on this adapter"
timeout 600 bash tests/unit.sh tests/ops/ 2>&1 | tail -5

echo "== the browser tests on this GPU (Chromium: Dawn on Vulkan, WGSL by Tint)"
if command -v chromium >/dev/null || [[ -x /usr/bin/chromium ]]; then
  # The adapter line the suite prints says whether Chromium took the GPU or SwiftShader.
  BNLAB_CHROMIUM_ARGS="--enable-features=Vulkan --use-vulkan=native --ignore-gpu-blocklist" \
    timeout 900 deno task test:browser 2>&1 | grep -E "^chromium|FAILED|^ok|^FAILED|workload|coverage"
else
  echo "no chromium: apt-get install -y chromium (or carry its .deb files), then rerun"
fi

echo "== the lab page (web/) on this GPU: its adapter line, examples/s, Stop's latency"
if command -v chromium >/dev/null || [[ -x /usr/bin/chromium ]]; then
  BNLAB_CHROMIUM_ARGS="--enable-features=Vulkan --use-vulkan=native --ignore-gpu-blocklist" \
    BNLAB_ARTIFACTS="${OUT:-.}" timeout 600 deno task test:web 2>&1 | grep -E "\.\.\.|^ok|^FAILED"
fi

echo "== training step throughput (batch 256) and per-layer profile"
timeout 900 deno run -A bench/train/train_bench.ts --steps 50
