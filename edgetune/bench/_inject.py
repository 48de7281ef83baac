"""A deliberately slower session, to check that the regression gate catches what it should."""

from __future__ import annotations

import time
from typing import Mapping

import numpy as np

from edgetune.runners import Session


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
