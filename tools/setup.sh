#!/usr/bin/env bash
# Create .venv and install edgetune with every extra. Idempotent: a second run only checks a stamp.
# torch==2.13.0 (local CPU build) is installed first and alone; tools/constraints.txt keeps it there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EDGETUNE_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.edgetune-setup"
WANT="$(cat pyproject.toml tools/constraints.txt tools/setup.sh | sha256sum | cut -c1-16)"

SCALESIM_VENV="$VENV-scalesim"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$VENV/bin/python" -c "import edgetune" 2>/dev/null \
   && [ -x "$SCALESIM_VENV/bin/python" ]; then
  echo "setup: $VENV is up to date"
  exit 0
fi

echo "setup: creating/updating $VENV (first run takes a few minutes)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip_install() {
  # pip's own exit status decides; only its noise about missing local index folders is dropped
  local log
  log="$(mktemp)"
  if ! "${PIP_PYTHON:-$VENV/bin/python}" -m pip --disable-pip-version-check -q install "$@" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2
    rm -f "$log"
    echo "setup: pip install $* failed" >&2
    exit 1
  fi
  rm -f "$log"
}
pip_install --upgrade pip
pip_install "torch==2.13.0"
# Stage 1: LiteRT stack (tensorflow-cpu, ai-edge-litert, litert-torch). Stage 2: everything else.
# Two stages because litert-torch's xdsl and apache-tvm-ffi disagree on typing-extensions (see pyproject).
pip_install -c tools/constraints.txt -e ".[litert]"
pip_install -c tools/constraints.txt -e ".[all,dev]"
# ONNX -> PyTorch for the LiteRT/Vela/TFLM candidates of ONNX models (edgetune/models/_onnx_torch.py).
# --no-deps: it requires torchvision, which would replace the CPU torch with a CUDA build.
pip_install --no-deps "onnx2torch==1.5.15"
# SCALE-Sim 3.0 crashes under numpy 2, which this environment needs (TensorFlow, litert-torch):
# it gets its own small environment, run as a subprocess (edgetune/simulate/_scalesim.py).
[ -x "$SCALESIM_VENV/bin/python" ] || "$PYTHON" -m venv "$SCALESIM_VENV"
PIP_PYTHON="$SCALESIM_VENV/bin/python" pip_install "scalesim==3.0.0" "numpy<2"
"$VENV/bin/python" - <<'PY'
import importlib, sys
import torch
if not torch.__version__.startswith("2.13.0"):
    sys.exit(f"setup: torch {torch.__version__} was installed, expected 2.13.0 (CPU build)")
for module in ("edgetune", "onnx", "onnxruntime", "tvm", "ai_edge_litert", "litert_torch", "onnxscript", "pytest", "ethosu.vela"):
    importlib.import_module(module)
from edgetune.models._onnx_torch import import_onnx2torch
import_onnx2torch()  # onnx2torch imports torchvision, absent here: edgetune supplies a placeholder
PY
# OpenVINO and NNCF send usage telemetry unless opted out; edgetune makes no hidden network calls.
if [ -x "$VENV/bin/opt_in_out" ]; then "$VENV/bin/opt_in_out" --opt_out >/dev/null 2>&1 || true; fi
echo "$WANT" > "$STAMP"
echo "setup: done ($VENV)"
