"""Arm Ethos-U: compile an int8 .tflite with Vela and read its performance estimate.

Profiler and parser are kept apart: ``run_vela`` runs the compiler as a subprocess (its
console script next to this interpreter), ``parse_vela_output`` turns the summary CSV, the
per-layer CSV and the operator placement it prints into numbers.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from edgetune.errors import RunnerError

VELA_TIMEOUT_S = 600
PARSER_VERSION = 1  # part of the cache key: bump when parse_vela_output changes what it returns
PER_LAYER_KEEP = ("Original Operator", "NNG Operator", "Target", "Op Cycles", "Network% (cycles)",
                  "MAC Count", "Util% (MAC)", "Name")


@dataclass(frozen=True)
class EthosUConfig:
    """What Vela needs to know about the NPU; None leaves Vela's own default."""

    accelerator_config: Optional[str] = None
    system_config: Optional[str] = None
    memory_mode: Optional[str] = None

    def arguments(self) -> list[str]:
        args: list[str] = []
        if self.accelerator_config:
            args += ["--accelerator-config", self.accelerator_config]
        if self.system_config or self.memory_mode:
            args += ["--config", "Arm/vela.ini"]  # the system configs and memory modes Arm ships with Vela
        if self.system_config:
            args += ["--system-config", self.system_config]
        if self.memory_mode:
            args += ["--memory-mode", self.memory_mode]
        return args


def vela_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ethos-u-vela")
    except PackageNotFoundError:
        return "not installed"


def vela_command() -> list[str]:
    """The Vela console script installed beside this interpreter, else the same entry point through it."""
    script = Path(sys.executable).with_name("vela")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from ethosu.vela.vela import main; sys.exit(main())"]


def run_vela(tflite: Path, config: EthosUConfig, output_dir: Path) -> str:
    """Compile ``tflite`` into ``output_dir`` with per-layer performance; return what Vela printed."""
    if not tflite.is_file():
        raise RunnerError(f"Vela input '{tflite}' does not exist")
    output_dir.mkdir(parents=True, exist_ok=True)
    # absolute: Vela runs in output_dir, where a path relative to ours (e.g. from `-o out`) would not resolve
    tflite, output_dir = tflite.resolve(), output_dir.resolve()
    command = [*vela_command(), str(tflite), *config.arguments(), "--output-dir", str(output_dir),
               "--verbose-performance", "--show-cpu-operations"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=VELA_TIMEOUT_S, cwd=output_dir)
    except subprocess.TimeoutExpired:
        raise RunnerError(f"Vela did not finish within {VELA_TIMEOUT_S} s on '{tflite.name}'") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise RunnerError(f"Vela failed on '{tflite.name}': {' | '.join(lines[-3:])[:400]}")
    (output_dir / "vela_stdout.txt").write_text(done.stdout)
    return done.stdout


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def parse_vela_output(output_dir: Path, stem: str, stdout: str) -> dict[str, Any]:
    """Numbers from Vela's ``<stem>_summary_<system>.csv``, ``<stem>_per-layer.csv`` and printed placement."""
    summaries = sorted(output_dir.glob(f"{stem}_summary_*.csv"))
    if not summaries:
        raise RunnerError(f"Vela wrote no summary CSV for '{stem}' in {output_dir}")
    with open(summaries[0], newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise RunnerError(f"Vela's summary {summaries[0].name} is empty")
    row = rows[0]
    result: dict[str, Any] = {
        "accelerator_config": row["accelerator_configuration"],
        "system_config": row["system_config"],
        "memory_mode": row["memory_mode"],
        "vela_clock_mhz": _number(row["core_clock"]) / 1e6,
        "cycles_npu": int(_number(row["cycles_npu"])),
        "cycles_total": int(_number(row["cycles_total"])),
        "vela_inference_time_ms": _number(row["inference_time"]) * 1e3,
        "sram_used_kb": _number(row["sram_memory_used"]),
        "dram_used_kb": _number(row["dram_memory_used"]),
        "on_chip_flash_used_kb": _number(row["on_chip_flash_memory_used"]),
        "off_chip_flash_used_kb": _number(row["off_chip_flash_memory_used"]),
        "weights_original_bytes": int(_number(row["total_original_weights"])),
        "weights_encoded_bytes": int(_number(row["total_npu_encoded_weights"])),
        "nn_macs": int(_number(row["nn_macs"])),
    }
    per_layer = output_dir / f"{stem}_per-layer.csv"
    layers: list[dict[str, Any]] = []
    if per_layer.is_file():
        with open(per_layer, newline="") as fh:
            for layer in csv.DictReader(fh):
                layers.append({key: layer.get(key, "") for key in PER_LAYER_KEEP})
    result["per_layer"] = layers
    result.update(_placement(stdout, layers))
    return result


_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+)", re.MULTILINE)
_CPU_OP = re.compile(r"^\s+CPU: (\S+) = (.*?)(?: \(outputs \[[^\]]*\]\))?$", re.MULTILINE)


def _placement(stdout: str, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Which operators run on the NPU and which fall back to the CPU (named by their output tensor)."""
    counts = {kind: int(n) for kind, n in _COUNT.findall(stdout)}
    cpu_ops = [{"op": layer["Original Operator"], "name": layer["Name"]} for layer in layers if layer.get("Target") == "CPU"]
    if not cpu_ops:
        cpu_ops = [{"op": op, "name": name.strip()} for op, name in _CPU_OP.findall(stdout)]
    return {"npu_ops": counts.get("NPU", sum(1 for layer in layers if layer.get("Target") == "NPU")),
            "cpu_ops": counts.get("CPU", len(cpu_ops)), "cpu_fallback_ops": cpu_ops}
