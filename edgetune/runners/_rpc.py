"""Artifacts measured on a board through the RPC tracker: the shared board handling, and TVM's.

A session asks the tracker for a board of the target's key, uploads the artifact, loads it
into the Relax VM over the RPC session and times it with TVM's time_evaluator on the board
(warm-up call discarded, per-repeat means), so the network round trip is not in the numbers.
A board that disconnects or times out mid-run is dropped and the work goes to another board
of the same key, at most ``retries`` times; every fault is kept in ``faults``. Sessions share a
key's boards and their connections through a BoardPool (runners/_board_pool.py). BoardSession holds
this board handling; ONNX Runtime and LiteRT sessions (runners/_rpc_runtime.py) use it too.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from pathlib import Path
from typing import Any, Callable, ContextManager, Mapping, Optional, TypeVar

import numpy as np

from edgetune.errors import ConfigError, RemoteError, RunnerError, one_line
from edgetune.runners._base import Runner, Session, device_for
from edgetune.runners._board_pool import DEFAULT_SESSION_TIMEOUT_S, DEFAULT_WAIT_S, BoardPool
from edgetune.runners._protocol import BOARD_ENVIRONMENT_KEY
from edgetune.runners._tracker import Board, KeyStatus, farm_status, require_key
from edgetune.runners._tracker_address import HOW_TO_CONFIGURE, TrackerAddress, resolve_tracker
from edgetune.targets import Target

REMOTE_RUNTIMES = ("tvm", "onnxruntime", "litert")
DEFAULT_RETRIES = 2
RETRY_BACKOFF_S = 1.0  # before a retry: the tracker drops a dead board, a restarted one registers again
MIN_REPEAT_MS = 1  # time_evaluator groups calls so that one sample lasts at least this long
_AFFINITY_BIG = 1  # TVM thread pool mode, as in runners/_tvm.py
# Messages of a dropped or expired RPC session (as opposed to an error in the artifact itself).
_FAULT_MARKERS = (
    "kShutdown", "RPCSessionTimeoutError", "session has expired", "Connection reset", "Connection refused",
    "Broken pipe", "connection", "Socket", "socket", "closed", "RPCServerLoop",
)
T = TypeVar("T")


def _is_board_fault(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, EOFError)):
        return True
    text = str(exc)
    return any(marker in text for marker in _FAULT_MARKERS)


class BoardSession(Session):
    """A loaded artifact on a board of one key, moved to another board of the key when its board fails.

    Subclasses open the artifact on a board (``_open``), bind inputs there (``_bind``) and forget
    their remote handles (``_forget``); this class takes and releases boards and retries.
    """

    def __init__(self, artifact: Path, threads: int, pool: BoardPool, retries: int = DEFAULT_RETRIES,
                 notify: Optional[Callable[[str], None]] = None, built_for: str = "") -> None:
        if retries < 0:
            raise ConfigError(f"RPC retries must be >= 0, got {retries}")
        self._artifact = artifact
        self._threads = threads
        self._pool = pool
        self._key = pool.key
        self._retries = retries
        self._built_for = built_for  # e.g. "aarch64-linux-gnu (cortex-a72)", for load-error hints
        self._notify = notify or (lambda _msg: None)
        self._board: Optional[Board] = None
        self._remote_name = artifact.name  # the upload's name on the board (unique per connection)
        self._feeds: Optional[dict[str, np.ndarray]] = None
        self._outputs: list[np.ndarray] = []
        self.faults: list[str] = []
        self.boards_used: list[str] = []
        self._call("loading the artifact", lambda: None)

    @property
    def board(self) -> Optional[str]:
        """host:port of the board this session runs on now (None between boards)."""
        return self._board.address if self._board else None

    def _connect(self) -> None:
        board = self._pool.acquire(self)
        self._board = board
        self.boards_used.append(board.address)
        self._pool.learn(board)
        self._remote_name = self._pool.upload_name(self._artifact.name)
        board.session.upload(str(self._artifact), self._remote_name)
        self._open(board)
        if self._feeds is not None:
            self._bind()

    @abstractmethod
    def _open(self, board: Board) -> None:
        """Load the uploaded artifact on ``board``."""

    @abstractmethod
    def _bind(self) -> None:
        """Bind ``self._feeds`` on the board."""

    @abstractmethod
    def _forget(self) -> None:
        """Drop every handle into the board's session."""

    def _unload(self) -> None:
        """Free what ``_open`` loaded on the board (other sessions may go on using the connection)."""

    def _drop(self, healthy: bool = False) -> None:
        # The connection closes with its last handle (the board's server then frees itself), unless
        # the pool keeps it for other sessions: then this session's artifact leaves the board first.
        board, self._board = self._board, None
        if board is not None and healthy:
            try:
                self._unload()
                board.session.remove(self._remote_name)
            except Exception:  # noqa: BLE001 - the board is gone: its next user finds out and retries
                healthy = False
        self._forget()
        if board is not None:
            self._pool.release(self, board, healthy)

    def release(self) -> None:
        """Give the board back; the next call takes a board again (uploading the artifact anew)."""
        self._drop(healthy=True)

    def _call(self, what: str, work: Callable[[], T]) -> T:
        attempts = self._retries + 1
        fault = ""
        for attempt in range(1, attempts + 1):
            address = "?"
            try:
                if self._board is None:
                    self._connect()
                address = self.board or "?"
                return work()
            except RemoteError as exc:  # no tracker, no board of this key, or none free: another try cannot help
                self._drop()
                exc.__traceback__ = None  # its frames hold the board's session: the board stays busy while they live
                raise RemoteError(f"{fault}; no other board to retry on: {exc}" if fault else str(exc)) from None
            except Exception as exc:
                address = self.board or address
                self._drop()
                exc.__traceback__ = None
                if not _is_board_fault(exc):  # the artifact or the model, not the board: another board fails alike
                    hint = ""
                    if what == "loading the artifact" and self._built_for:
                        hint = f"; check that the board is {self._built_for} as the target says"
                    raise RunnerError(f"board {address} (key '{self._key}'): {what} failed: {one_line(exc, last=True)}{hint}") from None
                fault = f"board {address} (key '{self._key}') failed while {what}: {one_line(exc, last=True)}"
                self.faults.append(fault)
                if attempt == attempts:
                    raise RemoteError(f"{fault}; gave up after {attempts} attempt(s)") from None
                self._notify(f"{fault}; retrying on another board of '{self._key}' ({attempt}/{self._retries})")
                time.sleep(RETRY_BACKOFF_S)
        raise AssertionError("unreachable")

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        self._feeds = {name: np.ascontiguousarray(value) for name, value in feeds.items()}
        self._call("copying inputs", self._bind)

    def outputs(self) -> list[np.ndarray]:
        return self._outputs

    def close(self) -> None:
        self._drop(healthy=True)


class RemoteTvmSession(BoardSession):
    """A Relax VM on a board; ``device_timed`` returns the board's own timings."""

    def __init__(self, artifact: Path, threads: int, pool: BoardPool, device: str = "cpu",
                 retries: int = DEFAULT_RETRIES, notify: Optional[Callable[[str], None]] = None,
                 built_for: str = "") -> None:
        self._device_kind = device
        self._vm: Any = None
        self._device: Any = None
        self._args: list[Any] = []
        super().__init__(artifact, threads, pool, retries, notify, built_for)

    def _open(self, board: Board) -> None:
        from tvm import relax

        remote = board.session
        module = remote.load_module(self._remote_name)
        self._device = remote.cuda(0) if self._device_kind == "cuda" else remote.cpu(0)
        remote.get_function("runtime.config_threadpool")(_AFFINITY_BIG, self._threads)
        self._vm = relax.VirtualMachine(module, self._device)

    def _bind(self) -> None:
        import tvm

        assert self._feeds is not None
        self._args = [tvm.runtime.tensor(np.ascontiguousarray(v), self._device) for v in self._feeds.values()]
        self._vm.set_input("main", *self._args)

    def _forget(self) -> None:
        self._args, self._vm, self._device = [], None, None

    def invoke(self) -> None:
        def run() -> list[np.ndarray]:
            result = self._vm["main"](*self._args)
            items = [result] if hasattr(result, "numpy") else list(result)
            return [np.asarray(item.numpy()) for item in items]

        self._outputs = self._call("running", run)

    def device_timed(self, count: int) -> Optional[list[float]]:
        if count <= 0:
            return []

        def timed() -> list[float]:
            evaluator = self._vm.time_evaluator("invoke_stateful", self._device, number=1, repeat=count,
                                                min_repeat_ms=MIN_REPEAT_MS)
            return [seconds * 1e3 for seconds in evaluator("main").results]

        return self._call("timing", timed)


def board_versions(pool: BoardPool, local: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Versions for the fingerprint of a remote runner: the key, the board's environment, ``local`` ones."""
    return {**(local or {}), "rpc_key": pool.key, BOARD_ENVIRONMENT_KEY: json.dumps(pool.environment(), sort_keys=True)}


class RemoteTvmRunner(Runner):
    """Runs exported Relax executables (.so, built for the board) on boards of one RPC key."""

    name = "tvm-rpc"
    host_timed = False  # the device (a board, a simulator) times its own runs
    artifact_format = "tvm-lib"
    modules = ("tvm", "tornado")
    extra = "tvm"

    def __init__(self, tracker: TrackerAddress, key: str, device: str = "cpu", retries: int = DEFAULT_RETRIES,
                 wait_s: float = DEFAULT_WAIT_S, session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
                 notify: Optional[Callable[[str], None]] = None, built_for: str = "") -> None:
        self.pool = BoardPool.shared(tracker, key, wait_s, session_timeout_s)
        self.built_for = built_for
        self.key = key
        self.device = device
        self.retries = retries
        self.notify = notify

    def load(self, artifact: Path, threads: int) -> RemoteTvmSession:
        """Take a board of the key, upload ``artifact`` and load it there (sessions share the key's boards)."""
        return RemoteTvmSession(artifact, threads, self.pool, self.device, self.retries, self.notify, self.built_for)

    def reusing(self) -> ContextManager[None]:
        """Keep board connections open between sessions (see BoardPool.reusing)."""
        return self.pool.reusing()

    def versions(self) -> dict[str, str]:
        """The workstation's TVM (it compiled the artifact) and the board's environment."""
        import tvm

        return board_versions(self.pool, {"tvm": tvm.__version__})


def remote_unsupported(runtime: str) -> Optional[str]:
    """Why ``runtime`` cannot run on an RPC board yet, or None when it can (TVM; ONNX Runtime and LiteRT
    on boards served by `edgetune farm serve` with that runtime installed)."""
    if runtime in REMOTE_RUNTIMES:
        return None
    return f"runtime {runtime} on RPC boards is not supported yet (remote runtimes: {', '.join(REMOTE_RUNTIMES)})"


def check_boards(target: Target, rpc_tracker: Optional[str] = None) -> KeyStatus:
    """Fail fast, before anything is built, when the tracker is unreachable or serves no board of the target's key."""
    tracker = resolve_tracker(rpc_tracker)
    if tracker is None:
        raise ConfigError(f"target '{target.name}' is reached over RPC; {HOW_TO_CONFIGURE}")
    return require_key(farm_status(tracker), target.rpc_key or target.name)


def remote_runner(runtime: str, target: Target, rpc_tracker: Optional[str] = None,
                  notify: Optional[Callable[[str], None]] = None) -> Runner:
    """The runner for ``runtime`` on the boards of rpc ``target`` behind the configured tracker."""
    reason = remote_unsupported(runtime)
    if reason:
        raise ConfigError(reason)
    tracker = resolve_tracker(rpc_tracker)
    if tracker is None:
        raise ConfigError(f"target '{target.name}' is reached over RPC; {HOW_TO_CONFIGURE}")
    key = target.rpc_key or target.name
    if runtime != "tvm":
        from edgetune.runners._rpc_runtime import remote_runtime_runners

        return remote_runtime_runners[runtime](tracker, key, notify=notify, device=device_for(target))
    device = device_for(target)
    cpu = target.cpu
    built_for = f"{cpu.llvm_mtriple if cpu.llvm_mtriple != 'auto' else cpu.arch} ({cpu.llvm_mcpu})"
    return RemoteTvmRunner(tracker, key, device, notify=notify,
                           built_for=built_for if cpu.arch != "auto" or cpu.llvm_mtriple != "auto" else "")
