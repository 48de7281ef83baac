"""The board side of `edgetune farm serve`: what edgetune.measure keeps loaded between calls, and what it closes."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pytest

import edgetune.runners
from edgetune.errors import RunnerError
from edgetune.farm._board import BoardMeasurer
from edgetune.runners import UNLOAD, Runner, Session

pytest.importorskip("onnxruntime")  # the board runtime the fake stands in for must count as installed


class _RecordingSession(Session):
    """Runs fail when the runner says so; closing is recorded."""

    def __init__(self, fail: bool, closed: list["_RecordingSession"]) -> None:
        self.fail, self.closed = fail, closed

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        pass

    def invoke(self) -> None:
        if self.fail:
            raise RunnerError("the first run failed")

    def outputs(self) -> list[np.ndarray]:
        return [np.zeros(3, dtype=np.float32)]

    def close(self) -> None:
        self.closed.append(self)


class _RecordingRunner(Runner):
    name = "onnxruntime"
    artifact_format = "onnx"
    host_timed = False  # no worker process: the session lives in this process, where the test sees it

    def __init__(self, fail: bool, closed: list[_RecordingSession]) -> None:
        self.fail, self.closed = fail, closed

    def load(self, artifact: Path, threads: int) -> Session:
        return _RecordingSession(self.fail, self.closed)

    def versions(self) -> dict[str, str]:
        return {}


def _measurer(monkeypatch: pytest.MonkeyPatch, fail: bool) -> tuple[BoardMeasurer, list[_RecordingSession]]:
    closed: list[_RecordingSession] = []
    monkeypatch.setattr(edgetune.runners, "get_runner", lambda runtime, device="cpu": _RecordingRunner(fail, closed))
    return BoardMeasurer(), closed


def test_a_session_whose_first_run_fails_is_closed_not_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    measurer, closed = _measurer(monkeypatch, fail=True)
    with pytest.raises(RunnerError, match="the first run failed"):
        measurer.measure(str(tmp_path / "model.onnx"), "onnxruntime", "cpu", 1, 0, "[]")
    assert len(closed) == 1 and not measurer._loaded


def test_a_session_that_runs_stays_loaded_until_unloaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    measurer, closed = _measurer(monkeypatch, fail=False)
    path = str(tmp_path / "model.onnx")
    measurer.measure(path, "onnxruntime", "cpu", 1, 0, "[]")
    measurer.measure(path, "onnxruntime", "cpu", 1, 0, "[]")
    assert closed == [] and list(measurer._loaded) == [path]
    measurer.measure(path, "onnxruntime", "cpu", 1, UNLOAD, "[]")
    assert len(closed) == 1 and not measurer._loaded
