"""The TVM runner's process-wide settings: held while a session is open, put back after it closes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from edgetune.runners import _tvm
from edgetune.runners._tvm import TvmRunner, TvmSession, configure_threads, release_threads

pytest.importorskip("tvm")


def test_tvm_num_threads_is_put_back_when_the_last_session_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tvm, "_PINNED", {"open": 0, "saved": None, "env": None})  # no session of another test open
    monkeypatch.setenv("TVM_NUM_THREADS", "7")
    configure_threads(1)
    configure_threads(2)
    assert os.environ["TVM_NUM_THREADS"] == "2"
    release_threads()
    assert os.environ["TVM_NUM_THREADS"] == "2"  # one session still open
    release_threads()
    assert os.environ["TVM_NUM_THREADS"] == "7"
    monkeypatch.delenv("TVM_NUM_THREADS")
    configure_threads(1)
    release_threads()
    assert "TVM_NUM_THREADS" not in os.environ
    release_threads()  # one release too many changes nothing
    assert "TVM_NUM_THREADS" not in os.environ


class _FailingVm:
    """A Relax VM stand-in whose every run raises."""

    def set_instrument(self, _instrument: Any) -> None:
        pass

    def __getitem__(self, _name: str) -> Any:
        def run(*_args: Any) -> None:
            raise RuntimeError("kernel crashed")

        return run


def test_node_times_closes_its_session_when_a_run_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    released: list[bool] = []
    monkeypatch.setattr(_tvm, "release_threads", lambda: released.append(True))
    monkeypatch.setattr(TvmRunner, "load", lambda self, artifact, threads: TvmSession(_FailingVm(), None))
    with pytest.raises(RuntimeError, match="kernel crashed"):
        TvmRunner().node_times(tmp_path / "model.so", 1, {}, runs=2, warmup=1)
    assert released == [True]  # closed: the thread pin goes back
