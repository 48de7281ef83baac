"""Sessions of simulated devices: real outputs from a functional model, timing from the simulator.

The device cannot run here, so a host runtime runs the functional model that stands for it
(the int8 .tflite an Ethos-U executes, through LiteRT; the ONNX graph a systolic array or FPGA
overlay executes, through ONNX Runtime) and ``device_timed`` returns the simulator's
deterministic latency estimate, which the timing harness takes instead of wall-clock time.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from edgetune.runners._base import Session
from edgetune.simulate._estimate import SimulatedEstimate


class SimulatedSession(Session):
    """Outputs from ``functional``; latency from ``estimate``."""

    def __init__(self, functional: Session, estimate: SimulatedEstimate) -> None:
        self._functional = functional
        self.estimate = estimate

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        self._functional.set_inputs(feeds)

    def invoke(self) -> None:
        self._functional.invoke()

    def outputs(self) -> list[np.ndarray]:
        return self._functional.outputs()

    def device_timed(self, count: int) -> Optional[list[float]]:
        return [self.estimate.latency_ms] * count

    def close(self) -> None:
        self._functional.close()
