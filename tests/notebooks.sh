#!/usr/bin/env bash
# Executes every notebooks/*.ipynb with the Deno Jupyter kernel, in quick mode
# (BNLAB_QUICK=1), into a temporary folder; fails if any cell of any notebook errs, if a
# notebook shows no chart, or if its first output does not give its mode and adapter.
# With arguments, executes just those notebooks: bash tests/notebooks.sh notebooks/00_quickstart.ipynb
#
# Needs Debian's Jupyter (`apt-get install jupyter-nbconvert python3-nbclient jupyter-client
# jupyter-notebook`, used as /usr/bin/jupyter) and the Deno kernel spec (`deno task jupyter:install`).
# Without arguments it also interrupts a running fit in the kernel (tests/notebook/interrupt.py).
set -euo pipefail

cd "$(dirname "$0")/.."
JUPYTER=/usr/bin/jupyter

if [[ ! -x $JUPYTER ]]; then
  echo "tests/notebooks.sh: $JUPYTER not found. Install Jupyter with:" >&2
  echo "  apt-get install -y jupyter-nbconvert python3-nbclient jupyter-client jupyter-notebook" >&2
  exit 1
fi
if ! "$JUPYTER" kernelspec list 2>/dev/null | awk '{print $1}' | grep -qx deno; then
  echo "tests/notebooks.sh: the Jupyter kernel spec 'deno' is missing." >&2
  echo "  Install it with: deno task jupyter:install" >&2
  exit 1
fi

shopt -s nullglob
if (($#)); then notebooks=("$@"); else notebooks=(notebooks/*.ipynb); fi
if ((${#notebooks[@]} == 0)); then
  echo "tests/notebooks.sh: no notebooks in notebooks/, nothing to run"
  exit 0
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export BNLAB_QUICK=1
# Silences pydevd's "frozen modules" warning from Debian's Python 3.11.
export PYDEVD_DISABLE_FILE_VALIDATION=1

failed=()
for nb in "${notebooks[@]}"; do
  name=$(basename "$nb" .ipynb)
  echo "== notebook $nb (BNLAB_QUICK=1)"
  start=$SECONDS
  if "$JUPYTER" nbconvert --to notebook --execute \
    --ExecutePreprocessor.kernel_name=deno --ExecutePreprocessor.timeout=600 \
    --output-dir "$out" --output "$name.out.ipynb" "$nb" 2>"$out/$name.log"; then
    # A notebook that ran is not enough: it must show a chart, and say its mode first.
    if problem=$(deno run --allow-read tests/notebook/outputs.ts "$out/$name.out.ipynb"); then
      echo "   ok ($((SECONDS - start)) s)"
    else
      echo "   FAILED ($((SECONDS - start)) s): $problem" >&2
      failed+=("$nb")
    fi
  else
    echo "   FAILED ($((SECONDS - start)) s):" >&2
    # nbconvert prints a long Python traceback; the failing cell and its error come last.
    if grep -q CellExecutionError "$out/$name.log"; then
      sed -n '/^nbclient.exceptions.CellExecutionError/,$p' "$out/$name.log" >&2
    else
      tail -n 40 "$out/$name.log" >&2
    fi
    failed+=("$nb")
  fi
done

if ((!$#)); then
  echo "== Kernel > Interrupt during fit (tests/notebook/interrupt.py)"
  if /usr/bin/python3 tests/notebook/interrupt.py 2>"$out/interrupt.log"; then
    echo "   ok"
  else
    echo "   FAILED:" >&2
    # the kernel's own output (it shares the log) and the failure, with every line after it
    # (a WebGPU error's messages follow on their own lines)
    tail -n 80 "$out/interrupt.log" >&2
    failed+=("tests/notebook/interrupt.py")
  fi
fi

if ((${#failed[@]})); then
  echo "tests/notebooks.sh: ${#failed[@]} of ${#notebooks[@]} notebook(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "tests/notebooks.sh: ${#notebooks[@]} notebook(s) ran without errors"
