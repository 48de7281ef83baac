"""Systolic-array NPU / FPGA overlay, simulated: SCALE-Sim's latency; outputs from ONNX Runtime.

SCALE-Sim models timing and memory traffic only, so the outputs come from the same ONNX graph
(float, or QDQ int8 for int8 candidates) run by ONNX Runtime: the values an int8 array
computing that graph would produce, up to accumulation rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from edgetune._availability import Availability
from edgetune.runners._base import NodeTime, Runner, Session
from edgetune.runners._ort import OrtRunner
from edgetune.runners._simulated import SimulatedSession
from edgetune.simulate._estimate import read_estimate
from edgetune.simulate._scalesim import scalesim_missing, scalesim_version


class ScaleSimRunner(Runner):
    """Systolic arrays and FPGA overlays through SCALE-Sim (simulated)."""

    name = "scalesim"
    host_timed = False  # the device (a board, a simulator) times its own runs
    artifact_format = "scalesim-onnx"
    modules = ("onnxruntime",)
    extra = "all"

    @classmethod
    def availability(cls) -> Availability:
        base = super().availability()
        if not base.ok:
            return base
        missing = scalesim_missing()
        return Availability(False, missing) if missing else base

    def load(self, artifact: Path, threads: int) -> Session:
        estimate = read_estimate(artifact)
        functional = OrtRunner().load(artifact.with_name(estimate.functional_model), threads)
        return SimulatedSession(functional, estimate)

    def versions(self) -> dict[str, str]:
        return {"scalesim": scalesim_version() or "not installed", **OrtRunner().versions()}

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,
                   warmup: int = 10) -> Optional[list[NodeTime]]:
        """Each array layer's simulated time (SCALE-Sim's cycles for it at the target's clock), named after its
        ONNX node; operators the array does not run are not simulated and cost nothing. None when the
        estimate kept only part of its layers."""
        details = read_estimate(artifact).details
        layers = details.get("per_layer") or []
        if not layers or len(layers) != details.get("array_layers"):
            return None
        per_ms = 1.0 / (float(details["clock_mhz"]) * 1e3)
        return [NodeTime(layer["node"], "Gemm" if layer["kind"] == "fc" else "Conv", layer["cycles"] * per_ms,
                         layer["cycles"] * per_ms) for layer in layers]
