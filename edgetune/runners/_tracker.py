"""Talk to a TVM RPC tracker: its summary, and a board of a given key (TVM's own protocol).

TVM's TrackerSession retries a refused connection for 60 s and waits forever for a key no
board serves; this client fails fast with one-line errors instead, and knows which board
(address) it was given, so that a fault can name it.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from typing import Any, Optional

from edgetune._lazy import require
from edgetune.errors import RemoteError, one_line
from edgetune.runners._tracker_address import TrackerAddress

CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class KeyStatus:
    """One key (board type) at the tracker: boards registered, free, and requests queued."""

    key: str
    boards: int
    free: int
    pending: int


@dataclass(frozen=True)
class FarmStatus:
    """What a tracker knows: per key status and the address of every registered board."""

    tracker: TrackerAddress
    keys: tuple[KeyStatus, ...]
    boards: tuple[tuple[str, str], ...]  # (key, host:port)

    def key(self, name: str) -> Optional[KeyStatus]:
        return next((k for k in self.keys if k.key == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracker": str(self.tracker),
            "keys": [k.__dict__ for k in self.keys],
            "boards": [{"key": k, "address": a} for k, a in self.boards],
        }


class TrackerConnection:
    """One TCP connection to a tracker (closed on exit)."""

    def __init__(self, tracker: TrackerAddress, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        require("tvm", "tvm")
        from tvm.rpc import base

        self.tracker = tracker
        self._base = base
        try:
            self._sock = socket.create_connection((tracker.host, tracker.port), timeout=timeout_s)
        except OSError as exc:
            raise RemoteError(
                f"cannot reach the RPC tracker at {tracker}: {exc.strerror or exc}; start one with "
                "`edgetune farm tracker` or check --rpc-tracker / $EDGETUNE_RPC_TRACKER"
            ) from None
        # TVM's protocol writes a length and then its payload: Nagle's algorithm holds the payload until
        # the length is ACKed, and a delayed ACK takes ~40 ms (a summary took 90 ms on loopback, 0.2 ms without)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
            magic = struct.unpack("<i", base.recvall(self._sock, 4))[0]
        except OSError as exc:
            self.close()
            raise RemoteError(f"{tracker} did not answer as an RPC tracker: {exc}") from None
        if magic != base.RPC_TRACKER_MAGIC:
            self.close()
            raise RemoteError(f"{tracker} is not a TVM RPC tracker")

    def _quick_ack(self) -> None:
        # the tracker (TVM's, unchanged) sends its replies in two writes as well: ACK each part at once so
        # the second is not held back (Linux; TCP_QUICKACK does not stick, hence before every read)
        if hasattr(socket, "TCP_QUICKACK"):
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _recvjson(self) -> Any:
        base = self._base
        self._quick_ack()
        size = struct.unpack("<i", base.recvall(self._sock, 4))[0]
        self._quick_ack()
        return json.loads(base.recvall(self._sock, size).decode("utf-8"))

    def __enter__(self) -> "TrackerConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def summary(self) -> FarmStatus:
        """The tracker's queues and registered boards."""
        base = self._base
        try:
            base.sendjson(self._sock, [base.TrackerCode.SUMMARY])
            value = self._recvjson()
        except OSError as exc:
            raise RemoteError(f"the RPC tracker at {self.tracker} stopped answering: {exc}") from None
        if value[0] != base.TrackerCode.SUCCESS:
            raise RemoteError(f"the RPC tracker at {self.tracker} refused the summary request: {value!r}")
        return _farm_status(self.tracker, value[1])

    def request(self, key: str, wait_s: float) -> tuple[str, int, str]:
        """Wait up to ``wait_s`` for a free board of ``key``: its (host, port, match key)."""
        base = self._base
        self._sock.settimeout(wait_s)
        try:
            base.sendjson(self._sock, [base.TrackerCode.REQUEST, key, "", 1])
            value = self._recvjson()
        except socket.timeout:
            raise TimeoutError from None
        except OSError as exc:
            raise RemoteError(f"the RPC tracker at {self.tracker} dropped the request for '{key}': {exc}") from None
        if value[0] != base.TrackerCode.SUCCESS:
            raise RemoteError(f"the RPC tracker at {self.tracker} refused the request for '{key}': {value!r}")
        host, port, match_key = value[1]
        return str(host), int(port), str(match_key)


def _farm_status(tracker: TrackerAddress, raw: dict[str, Any]) -> FarmStatus:
    boards: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for info in raw.get("server_info", []):
        key = str(info.get("key", "")).split(":", 1)[-1]  # 'server:rpi4' -> 'rpi4'
        host, port = info.get("addr", ["?", "?"])
        boards.append((key, f"{host}:{port}"))
        counts[key] = counts.get(key, 0) + 1
    queues = raw.get("queue_info", {})
    keys = sorted(set(counts) | set(queues))
    statuses = tuple(
        KeyStatus(k, counts.get(k, 0), int(queues.get(k, {}).get("free", 0)), int(queues.get(k, {}).get("pending", 0)))
        for k in keys
    )
    return FarmStatus(tracker, statuses, tuple(sorted(boards)))


def farm_status(tracker: TrackerAddress) -> FarmStatus:
    """Queues and free boards per key at ``tracker`` (TVM's tracker summary)."""
    with TrackerConnection(tracker) as conn:
        return conn.summary()


def require_key(status: FarmStatus, key: str) -> KeyStatus:
    """The status of ``key``; RemoteError saying how to register a board when none is."""
    found = status.key(key)
    if found is None or found.boards == 0:
        known = ", ".join(k.key for k in status.keys if k.boards) or "none"
        raise RemoteError(
            f"no board is registered under key '{key}' at the RPC tracker {status.tracker} (keys with boards: {known}); "
            f"on the board run: edgetune farm serve --tracker {status.tracker} --key {key}"
        )
    return found


@dataclass
class Board:
    """An RPC session on one board, handed out by the tracker for one key."""

    key: str
    address: str  # host:port of the board's RPC server
    session: Any  # tvm.rpc.RPCSession


def request_board(tracker: TrackerAddress, key: str, wait_s: float = 60.0, session_timeout_s: float = 0) -> Board:
    """Connect to a free board registered under ``key``; errors name the key and the tracker.

    ``session_timeout_s`` (0: none) lets the board end a session that runs longer, so a hung
    run surfaces as an error instead of blocking forever.
    """
    from tvm import rpc

    with TrackerConnection(tracker) as conn:
        status = require_key(conn.summary(), key)
        try:
            host, port, match_key = conn.request(key, wait_s)
        except TimeoutError:
            raise RemoteError(
                f"no board under key '{key}' became free within {wait_s:g} s "
                f"({status.boards} registered at {tracker}, all busy)"
            ) from None
    try:
        session = rpc.connect(host, port, match_key, session_timeout=session_timeout_s)
    except Exception as exc:  # tvm raises RuntimeError/TVMError subclasses for refused or dropped connections
        raise RemoteError(f"board {host}:{port} (key '{key}') did not accept the session: {one_line(exc)}") from None
    return Board(key, f"{host}:{port}", session)
