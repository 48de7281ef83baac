"""Cortex-M MCU, simulated: TFLite Micro's arena and a MAC-based latency estimate; outputs through LiteRT.

The artifact is the .tflite TFLite Micro would run on the board; LiteRT runs the same
flatbuffer here for the outputs (same TFLite operator semantics as TFLM's int8 kernels, up to
rounding), and ``device_timed`` returns the estimate made at lowering time.
"""

from __future__ import annotations

from pathlib import Path

from edgetune.runners._base import Runner, Session
from edgetune.runners._litert import LiteRtRunner
from edgetune.runners._simulated import SimulatedSession
from edgetune.simulate._estimate import read_estimate
from edgetune.simulate._tflm import tflm_version


class TflmRunner(Runner):
    """Cortex-M microcontrollers with TensorFlow Lite Micro (simulated)."""

    name = "tflm"
    host_timed = False  # the device (a board, a simulator) times its own runs
    artifact_format = "tflm-tflite"
    modules = ("tflite_micro", "ai_edge_litert")
    extra = "mcu"

    def load(self, artifact: Path, threads: int) -> Session:
        estimate = read_estimate(artifact)
        return SimulatedSession(LiteRtRunner().load(artifact.with_name(estimate.functional_model), threads), estimate)

    def versions(self) -> dict[str, str]:
        return {"tflite-micro": tflm_version(), **LiteRtRunner().versions()}
