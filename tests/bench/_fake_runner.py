"""A runner for worker-process tests: its artifact is a JSON file saying how each run behaves."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from edgetune.errors import RunnerError
from edgetune.runners import Runner, Session


class BusySession(Session):
    """Each run busy-waits ``ms``; after ``die_after`` runs the process kills itself, after ``hang_after`` it sleeps."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.calls = 0
        self.bound: dict[str, np.ndarray] = {}

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        self.bound = dict(feeds)

    def invoke(self) -> None:
        self.calls += 1
        if self.spec.get("die_after") and self.calls > self.spec["die_after"]:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.spec.get("hang_after") and self.calls > self.spec["hang_after"]:
            time.sleep(3600)
        deadline = time.perf_counter() + self.spec.get("ms", 0.2) / 1e3
        while time.perf_counter() < deadline:
            pass

    def outputs(self) -> list[np.ndarray]:
        return [np.asarray([float(os.getpid())]), *(v * 2 for v in self.bound.values())]


class BusyRunner(Runner):
    name = "busy"
    artifact_format = "json"

    def load(self, artifact: Path, threads: int) -> Session:
        spec = json.loads(artifact.read_text())
        if spec.get("fail_load"):
            raise RunnerError(f"cannot load {artifact.name}: {spec['fail_load']}")
        return BusySession(spec)

    def versions(self) -> dict[str, str]:
        return {"busy": "1"}


def artifact(folder: Path, name: str, **spec: object) -> Path:
    """Write a fake artifact describing its runs."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path
