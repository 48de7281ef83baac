"""Arm Ethos-U NPU, simulated: Vela's latency estimate; outputs from the int8 model through LiteRT.

The Vela-optimised .tflite holds an ``ethos-u`` custom operator that only the NPU driver
executes, so the outputs come from the int8 .tflite Vela compiled (kept beside the artifact),
run by LiteRT's int8 kernels. The NPU implements the same TFLite int8 operator semantics, so
these are the device's values up to rounding differences (e.g. where Vela rewrites Mean as a
depthwise convolution); they are real outputs of the quantized network, not the fp32 model's.
"""

from __future__ import annotations

from pathlib import Path

from edgetune.errors import RunnerError
from edgetune.runners._base import Runner, Session
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
