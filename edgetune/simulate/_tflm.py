"""Cortex-M MCUs: the tensor arena TensorFlow Lite Micro allocates for a .tflite, measured by TFLM itself.

TFLM's recording allocator prints ``Arena allocation total N bytes`` from C++ (to stdout or
stderr, depending on what they are connected to), so the measurement runs in a subprocess whose
output is read back: no file-descriptor juggling in this process.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgetune.errors import RunnerError

TIMEOUT_S = 300
_SCRIPT = ("import sys\n"
           "from tflite_micro.python.tflite_micro import runtime\n"
           "runtime.Interpreter.from_file(sys.argv[1]).print_allocations()\n")
_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def tflm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tflite-micro")
    except PackageNotFoundError:
        return "not installed"


def measure_arena(tflite: Path) -> dict[str, Any]:
    """Arena bytes (total, head = non-persistent tensors, tail = persistent) TFLM allocates for ``tflite``."""
    if not tflite.is_file():
        raise RunnerError(f"TFLM input '{tflite}' does not exist")
    try:
        done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tflite)], capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RunnerError(f"TFLite Micro did not allocate '{tflite.name}' within {TIMEOUT_S} s") from None
    found = {kind: int(n) for kind, n in _LINE.findall(done.stdout + done.stderr)}
    if done.returncode != 0 or "total" not in found:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise RunnerError(f"TFLite Micro cannot allocate '{tflite.name}': {' | '.join(lines[-3:])[:400]}")
    return {"arena_bytes": found["total"], "arena_head_bytes": found.get("head", 0),
            "arena_tail_bytes": found.get("tail", 0)}
