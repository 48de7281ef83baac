"""Arm Ethos-U NPU, simulated: Vela's latency estimate; outputs from the int8 model through LiteRT.

The Vela-optimised .tflite holds an ``ethos-u`` custom operator that only the NPU driver
executes, so the outputs come from the int8 .tflite Vela compiled (kept beside the artifact),
run by LiteRT's int8 kernels. The NPU implements the same TFLite int8 operator semantics, so
these are the device's values up to rounding differences (e.g. where Vela rewrites Mean as a
depthwise convolution); they are real outputs of the quantized network, not the fp32 model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from edgetune.errors import RunnerError
from edgetune.runners._base import NodeTime, Runner, Session
from edgetune.runners._litert import LiteRtRunner
from edgetune.runners._simulated import SimulatedSession
from edgetune.simulate._estimate import read_estimate
from edgetune.simulate._vela import vela_version


class VelaRunner(Runner):
    """Ethos-U55/U65 through Vela's performance estimator (simulated)."""

    name = "vela"
    host_timed = False  # the device (a board, a simulator) times its own runs
    artifact_format = "vela-tflite"
    modules = ("ethosu", "ai_edge_litert")
    extra = "vela"

    def load(self, artifact: Path, threads: int) -> Session:
        estimate = read_estimate(artifact)
        with open(artifact, "rb") as fh:
            header = fh.read(8)
        if header[4:8] != b"TFL3":
            raise RunnerError(f"'{artifact.name}' is not a TFLite flatbuffer")
        functional = LiteRtRunner().load(artifact.with_name(estimate.functional_model), threads)
        return SimulatedSession(functional, estimate)

    def versions(self) -> dict[str, str]:
        return {"ethos-u-vela": vela_version(), **LiteRtRunner().versions()}

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,
                   warmup: int = 10) -> Optional[list[NodeTime]]:
        """Vela's per-layer estimate (``--verbose-performance``): each operator's cycles at the target's NPU
        clock, named after its output tensor; operators that fall back to the CPU are one more row, costed as
        in the latency (MACs x CMSIS-NN cycles/MAC). None when Vela wrote no per-layer table."""
        return vela_layers(read_estimate(artifact).details)


def vela_layers(details: Mapping[str, Any]) -> Optional[list[NodeTime]]:
    """NodeTimes from a Vela estimate's details (``per_layer`` rows, ``npu_clock_mhz``, ``cpu_fallback``)."""
    rows = details.get("per_layer") or []
    if not rows:
        return None
    per_cycle_ms = 1.0 / (float(details["npu_clock_mhz"]) * 1e3)
    out = []
    for row in rows:
        if row.get("Target", "NPU") != "NPU":
            continue
        try:
            ms = float(row.get("Op Cycles") or 0.0) * per_cycle_ms
        except ValueError:
            ms = 0.0
        op = str(row.get("NNG Operator") or row.get("Original Operator") or "?")
        out.append(NodeTime(str(row.get("Name", "")), op, ms, ms))
    fallback = details.get("cpu_fallback")
    if fallback:
        ms = float(fallback["latency_ms"])
        out.append(NodeTime("cpu-fallback", f"CPU ({fallback.get('core', '?')})", ms, ms))
    return out
