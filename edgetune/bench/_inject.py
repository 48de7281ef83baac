"""A deliberately slower session, to check that the regression gate catches what it should."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import numpy as np

from edgetune.runners import Runner, Session


class SlowedSession(Session):
    """Wraps a real session and busy-waits ``extra_ms`` after every inference (a known, injected slowdown)."""

    def __init__(self, inner: Session, extra_ms: float) -> None:
        self.inner, self.extra_ms = inner, extra_ms

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        self.inner.set_inputs(feeds)

    def invoke(self) -> None:
        self.inner.invoke()
        end = time.perf_counter() + self.extra_ms / 1e3
        while time.perf_counter() < end:
            pass

    def outputs(self) -> list[np.ndarray]:
        return self.inner.outputs()

    def close(self) -> None:
        self.inner.close()


class SlowedRunner(Runner):
    """``inner``'s sessions, each slowed by ``extra_ms`` per inference (picklable: it runs in worker processes too)."""

    def __init__(self, inner: Runner, extra_ms: float) -> None:
        self.inner, self.extra_ms = inner, extra_ms
        self.name = inner.name  # type: ignore[misc]
        self.artifact_format = inner.artifact_format  # type: ignore[misc]

    def load(self, artifact: Path, threads: int) -> Session:
        return SlowedSession(self.inner.load(artifact, threads), self.extra_ms)

    def versions(self) -> dict[str, str]:
        return self.inner.versions()
