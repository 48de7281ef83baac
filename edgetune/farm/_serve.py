"""Run TVM's RPC tracker and RPC server (what a board runs) in this process.

Both are TVM's own implementations (tvm.rpc.tracker / tvm.rpc.server), started without the
extra worker process that tvm.rpc.Tracker/Server spawn: their state objects start a listening
thread, and creating them from a daemon thread makes that thread a daemon too (threads inherit
the flag), so Ctrl-C or the end of the caller stops them instead of hanging the process.
"""

from __future__ import annotations

import logging
import signal
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from edgetune._lazy import require
from edgetune.errors import ConfigError, RemoteError
from edgetune.runners._tracker import TrackerConnection
from edgetune.runners._tracker_address import DEFAULT_SERVER_PORT, DEFAULT_TRACKER_PORT, TrackerAddress

Notify = Callable[[str], None]


def _start_in_daemon_thread(factory: Callable[[], Any], what: str) -> Any:
    box: dict[str, Any] = {}

    def create() -> None:
        try:
            box["state"] = factory()
        except Exception as exc:  # reported in the caller's thread
            box["error"] = exc

    starter = threading.Thread(target=create, name=f"edgetune-{what}-start", daemon=True)
    starter.start()
    starter.join()
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, (OSError, ValueError)):
            raise ConfigError(f"cannot start the {what}: {exc}") from None
        raise exc
    return box["state"]


def _quiet(silent: bool) -> None:
    for name in ("RPCTracker", "RPCServer"):
        logging.getLogger(name).setLevel(logging.WARNING if silent else logging.INFO)


@dataclass
class RunningTracker:
    """A TVM RPC tracker listening in this process; ``stop()`` shuts it down."""

    address: TrackerAddress
    _stop_key: str
    _thread: threading.Thread

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        from tvm.rpc import base

        if not self._thread.is_alive():
            return
        host = "127.0.0.1" if self.address.host in ("0.0.0.0", "") else self.address.host
        with socket.create_connection((host, self.address.port), timeout=5) as sock:
            sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
            base.recvall(sock, 4)
            base.sendjson(sock, [base.TrackerCode.STOP, self._stop_key])
            base.recvjson(sock)
        self._thread.join(5)

    def __enter__(self) -> "RunningTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_tracker(host: str = "127.0.0.1", port: int = DEFAULT_TRACKER_PORT, silent: bool = True) -> RunningTracker:
    """Start a TVM RPC tracker on ``host:port`` in a background (daemon) thread of this process."""
    require("tvm", "tvm")
    require("tornado", "tvm")
    from tvm.rpc.tracker import PopenTrackerServerState

    _quiet(silent)
    state = _start_in_daemon_thread(lambda: PopenTrackerServerState(host, port, port + 1, silent=silent), "RPC tracker")
    return RunningTracker(TrackerAddress(host, state.port), state.stop_key, state.thread)


@dataclass
class RunningServer:
    """A TVM RPC server registered with a tracker under ``key``, listening in this process."""

    key: str
    host: str
    port: int
    _thread: threading.Thread

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def start_server(
    tracker: TrackerAddress, key: str, host: str = "127.0.0.1", port: int = DEFAULT_SERVER_PORT,
    port_end: Optional[int] = None, silent: bool = True,
) -> RunningServer:
    """Start a TVM RPC server on the first free port in [port, port_end) and register it under ``key``.

    Each session it accepts runs in a forked process, one session at a time: a board serves one
    measurement at a time. The edgetune.* board functions (ONNX Runtime / LiteRT measurement, the
    board's environment) are registered first, so that every session process has them.
    """
    if not key or any(c.isspace() or c == ":" for c in key):
        raise ConfigError(f"RPC key must be a non-empty word without ':' or spaces, got '{key}'")
    require("tvm", "tvm")
    from tvm.rpc.server import PopenRPCServerState

    from edgetune.farm._board import register_board_functions

    register_board_functions()
    with TrackerConnection(tracker):  # fail now with a clear error rather than retry for a minute
        pass
    _quiet(silent)
    end = port_end if port_end is not None else port + 100
    state = _start_in_daemon_thread(
        lambda: PopenRPCServerState(host, port, end, tracker_addr=(tracker.host, tracker.port), key=key, silent=silent),
        "RPC server",
    )
    return RunningServer(key, host, state.port, state.thread)


def wait_until_stopped(thread_alive: Callable[[], bool], poll_s: float = 0.5) -> None:
    """Block until the service stops, Ctrl-C or SIGTERM (both raise KeyboardInterrupt to the caller)."""

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while thread_alive():
            time.sleep(poll_s)
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise RemoteError("the RPC service stopped unexpectedly (see the log above)")


def stop_sessions() -> None:
    """End the session processes this RPC server forked (a measurement in flight on this board)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
