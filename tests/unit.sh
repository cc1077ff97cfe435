#!/usr/bin/env bash
# Runs the unit tests and the documentation examples (README.md's included):
#   deno test -A --v8-flags=--expose-gc --doc [ARGS...]
# With arguments, just those: bash tests/unit.sh tests/ops/pool_test.ts
#
# Why a script: Deno's test runner gives every test module, and every documentation
# example, an isolate of its own, and each isolate creates and drops its own WebGPU
# instance. On Linux wgpu then loads and unloads the Vulkan drivers, and Mesa's EGL/GL
# driver as well, once per module that touches the GPU (of 197 modules). Mesa's LLVM-based
# drivers do not survive that: 2 of 4 local runs and a CI run aborted at exit, after every
# test had passed (glibc's "corrupted size vs. prev_size" in libEGL's destructor); a
# reproducer of 60 workers crashed 1 and 3 runs in 15 (as is; Vulkan only: a jump into an
# unloaded driver), none with the driver pinned. So on
# Linux this script
#   - asks Deno for the Vulkan backend only (DENO_WEBGPU_BACKEND=vulkan, unless set), which
#     keeps EGL and the GL driver out of the process, and
#   - preloads the Vulkan drivers named by the loader's manifests (the ones it loads at
#     every instance anyway), so that they stay loaded for the whole run.
# BNLAB_PIN_VULKAN=0 turns the second off.
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ $(uname -s) == Linux ]]; then
  export DENO_WEBGPU_BACKEND=${DENO_WEBGPU_BACKEND:-vulkan}
  if [[ ${BNLAB_PIN_VULKAN:-1} != 0 ]]; then
    # The manifests the Vulkan loader reads: the files it is told to, else its directories.
    manifests=()
    files=${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}
    if [[ -n $files ]]; then
      IFS=: read -r -a manifests <<<"$files"
    else
      shopt -s nullglob
      manifests=(/etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json
        /usr/share/vulkan/icd.d/*.json)
      shopt -u nullglob
    fi
    pinned=()
    for m in "${manifests[@]}"; do
      [[ -f $m ]] || continue
      # A manifest for another architecture (lvp_icd.i686.json) names a library this
      # process cannot load.
      name=$(basename "$m" .json)
      if [[ $name == *.* && ${name##*.} != "$(uname -m)" ]]; then continue; fi
      lib=$(sed -n 's/.*"library_path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$m" | head -n 1)
      # Only absolute paths that exist: a bare name would make ld.so search, and warn.
      if [[ $lib == /* && -f $lib ]]; then pinned+=("$lib"); fi
    done
    if ((${#pinned[@]})); then
      LD_PRELOAD=$(
        IFS=:
        echo "${pinned[*]}${LD_PRELOAD:+:$LD_PRELOAD}"
      )
      export LD_PRELOAD
    fi
  fi
fi

exec deno test -A --v8-flags=--expose-gc --doc "$@"
