"""ONNX Runtime and LiteRT artifacts measured on a board through the RPC tracker.

The artifact is uploaded through TVM's RPC session and handed to ``edgetune.measure``, a function
that `edgetune farm serve` registers on the board: it loads the artifact with edgetune's own
runner for that runtime, installed on the board, runs or times it there (the harness's warm-up
and sampling, so the network round trip is not in the numbers) and keeps the outputs, which come
back tensor by tensor. Board faults, retries and board sharing are BoardSession's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, ClassVar, ContextManager, Optional

import numpy as np

from edgetune.errors import RemoteError
from edgetune.runners._base import Runner
from edgetune.runners._board_pool import DEFAULT_SESSION_TIMEOUT_S, DEFAULT_WAIT_S, PLAIN_SERVER, BoardPool
from edgetune.runners._ort import ORT_PROVIDERS
from edgetune.runners._protocol import LOAD_ONLY, MEASURE, OUTPUT, RUNTIME_VERSIONS, UNLOAD
from edgetune.runners._rpc import DEFAULT_RETRIES, BoardSession, board_versions
from edgetune.runners._tracker import Board
from edgetune.runners._tracker_address import TrackerAddress


class RemoteRuntimeSession(BoardSession):
    """An artifact loaded by ``runtime`` on a board's ``device`` ("cpu", "cuda"); ``device_timed`` returns the
    board's own timings."""

    def __init__(self, artifact: Path, threads: int, pool: BoardPool, runtime: str,
                 retries: int = DEFAULT_RETRIES, notify: Optional[Callable[[str], None]] = None,
                 device: str = "cpu") -> None:
        self._runtime = runtime
        self._device_kind = device
        self._measure: Any = None
        self._output: Any = None
        self._device: Any = None
        self._inputs_sent = False
        super().__init__(artifact, threads, pool, retries, notify)

    def _open(self, board: Board) -> None:
        remote = board.session
        try:
            versions = remote.get_function(RUNTIME_VERSIONS)
            self._measure, self._output = remote.get_function(MEASURE), remote.get_function(OUTPUT)
        except AttributeError:
            raise RemoteError(f"board {board.address} (key '{self._key}') cannot run {self._runtime} artifacts: "
                              f"{PLAIN_SERVER}") from None
        runtime = json.loads(str(versions())).get(self._runtime)
        if not runtime or not runtime["installed"]:
            why = runtime["reason"] if runtime else "this edgetune version does not serve it"
            raise RemoteError(f"runtime {self._runtime} is not installed on board {board.address} (key '{self._key}'): "
                              f"{why}; install it there and restart `edgetune farm serve`")
        self._device = remote.cpu(0)
        self._inputs_sent = False
        self._run(LOAD_ONLY)  # a load error surfaces now, as "loading the artifact"

    def _bind(self) -> None:
        self._inputs_sent = False  # sent with the next run, in the same call

    def _forget(self) -> None:
        self._measure, self._output, self._device = None, None, None

    def _unload(self) -> None:
        if self._measure is not None:
            self._run(UNLOAD)

    def _run(self, repeat: int) -> dict[str, Any]:
        import tvm

        inputs: list[Any] = []
        names: list[str] = []
        if self._feeds is not None and not self._inputs_sent:
            names = list(self._feeds)
            inputs = [tvm.runtime.tensor(value, self._device) for value in self._feeds.values()]
        answer = json.loads(str(self._measure(self._remote_name, self._runtime, self._device_kind, self._threads,
                                              repeat, json.dumps(names), *inputs)))
        self._inputs_sent = True
        return dict(answer)

    def invoke(self) -> None:
        def run() -> list[np.ndarray]:
            count = int(self._run(0)["outputs"])
            return [np.asarray(self._output(self._remote_name, index).numpy()) for index in range(count)]

        self._outputs = self._call("running", run)

    def device_timed(self, count: int) -> Optional[list[float]]:
        if count <= 0:
            return []
        return self._call("timing", lambda: [float(ms) for ms in self._run(count)["samples_ms"]])


class RemoteRuntimeRunner(Runner):
    """Runs ``runtime``'s artifacts on boards of one RPC key served by `edgetune farm serve`, on the
    boards' ``device`` ("cuda": the GPU of a GPU target; the board's runner says when it has no such path)."""

    runtime: ClassVar[str]
    host_timed = False  # the board times its own runs
    modules = ("tvm", "tornado")
    extra = "tvm"

    def __init__(self, tracker: TrackerAddress, key: str, retries: int = DEFAULT_RETRIES,
                 wait_s: float = DEFAULT_WAIT_S, session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
                 notify: Optional[Callable[[str], None]] = None, device: str = "cpu") -> None:
        self.pool = BoardPool.shared(tracker, key, wait_s, session_timeout_s)
        self.key = key
        self.retries = retries
        self.notify = notify
        self.device = device

    def load(self, artifact: Path, threads: int) -> RemoteRuntimeSession:
        """Take a board of the key, upload ``artifact`` and load it there with the board's runtime."""
        return RemoteRuntimeSession(artifact, threads, self.pool, self.runtime, self.retries, self.notify,
                                    self.device)

    def reusing(self) -> ContextManager[None]:
        """Keep board connections open between sessions (see BoardPool.reusing)."""
        return self.pool.reusing()

    def versions(self) -> dict[str, str]:
        """The board's environment (its CPU and its runtime versions), and the provider on a GPU."""
        local = {"onnxruntime_provider": ORT_PROVIDERS[self.device]} if self.runtime == "onnxruntime" and \
            self.device != "cpu" else {}
        return board_versions(self.pool, local)


class RemoteOrtRunner(RemoteRuntimeRunner):
    """ONNX Runtime on RPC boards."""

    name = "onnxruntime-rpc"
    artifact_format = "onnx"
    runtime = "onnxruntime"


class RemoteLiteRtRunner(RemoteRuntimeRunner):
    """LiteRT on RPC boards."""

    name = "litert-rpc"
    artifact_format = "tflite"
    runtime = "litert"


remote_runtime_runners: dict[str, type[RemoteRuntimeRunner]] = {
    cls.runtime: cls for cls in (RemoteOrtRunner, RemoteLiteRtRunner)
}
