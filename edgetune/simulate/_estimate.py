"""A simulator's estimate for one artifact, kept in a JSON file beside it (``<artifact>.sim.json``).

The runner reads it back: ``latency_ms`` becomes the session's device timing, and
``functional_model`` names the file whose outputs stand for the device's (the device itself
cannot run here).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgetune.errors import RunnerError, one_line

SUFFIX = ".sim.json"


@dataclass(frozen=True)
class SimulatedEstimate:
    """Latency and resource figures a simulator gave for one model on one target."""

    simulator: str
    simulator_version: str
    target: str
    latency_ms: float
    functional_model: str  # file name beside the artifact that produces the outputs
    functional_format: str  # tflite | onnx
    details: dict[str, Any] = field(default_factory=dict)
    simulated: bool = True

    def to_details(self) -> dict[str, Any]:
        """What goes into Artifact.details (and so into manifests and reports)."""
        return {"simulated": True, "simulator": self.simulator, "simulator_version": self.simulator_version,
                "latency_ms": self.latency_ms, **self.details}


def sidecar_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + SUFFIX)


def write_estimate(artifact: Path, estimate: SimulatedEstimate) -> Path:
    """Write the estimate beside ``artifact``."""
    path = sidecar_path(artifact)
    path.write_text(json.dumps(asdict(estimate), indent=1, sort_keys=True))
    return path


def read_estimate(artifact: Path) -> SimulatedEstimate:
    """Read the estimate written beside ``artifact``; RunnerError if it is missing or malformed."""
    path = sidecar_path(artifact)
    if not artifact.is_file():
        raise RunnerError(f"artifact '{artifact}' does not exist")
    try:
        raw = json.loads(path.read_text())
        estimate = SimulatedEstimate(**raw)
    except FileNotFoundError:
        raise RunnerError(f"'{artifact.name}' has no simulator estimate beside it ({path.name}); "
                          "build it with edgetune's lowering for this target") from None
    except (ValueError, TypeError) as exc:
        raise RunnerError(f"simulator estimate {path.name} is malformed: {one_line(exc, 200)}") from None
    if not (estimate.latency_ms >= 0):
        raise RunnerError(f"simulator estimate {path.name} has no valid latency")
    functional = artifact.with_name(estimate.functional_model)
    if functional.name != estimate.functional_model or not functional.is_file():
        raise RunnerError(f"'{artifact.name}': the model that produces its outputs ({estimate.functional_model}) is missing")
    return estimate
