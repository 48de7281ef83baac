"""The boards of one RPC key that this process's sessions are connected to, shared and reused.

A board's RPC connection costs a tracker request, a session process forked on the board and an
upload before anything runs (about 0.2 s on loopback), and the profiler opens thousands of tiny
sessions. So a connection is not tied to one session: sessions of the pool that outnumber the free
boards share a connection (they run one call at a time anyway: the client waits on each call),
and inside ``BoardPool.reusing()`` a connection no session uses any more stays open for the next
session, for at most ``idle_s`` and never while another client waits at the tracker for the key.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from edgetune.runners._protocol import BOARD_ENVIRONMENT
from edgetune.runners._tracker import Board, farm_status, request_board
from edgetune.runners._tracker_address import TrackerAddress

DEFAULT_WAIT_S = 120.0  # for a busy board of the key to become free
DEFAULT_SESSION_TIMEOUT_S = 900.0  # the board ends a connection open longer (a hung run)
DEFAULT_IDLE_S = 10.0  # a reused connection nobody uses goes back to the tracker after this long
SETTLE_S = 2.0  # a board whose session just ended registers again within this long
PLAIN_SERVER = "a plain TVM RPC server has no edgetune functions: start the board with `edgetune farm serve`"


@dataclass(eq=False)
class _Connection:
    board: Board
    opened_at: float
    users: list[object] = field(default_factory=list)
    idle_timer: Optional[threading.Timer] = None


class BoardPool:
    """The boards of one key that this process's sessions hold; runners of every runtime on a key share one.

    A session takes a board the tracker has free; when it has none and sessions of this pool are
    connected, the new session shares the connection with the fewest users instead of waiting for
    a board this process itself holds. The pool also remembers the environment of the first board
    it met (CPU, cores, runtime versions), for the fingerprint.
    """

    def __init__(self, tracker: TrackerAddress, key: str, wait_s: float = DEFAULT_WAIT_S,
                 session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S, idle_s: float = DEFAULT_IDLE_S) -> None:
        self.tracker = tracker
        self.key = key
        self.wait_s = wait_s
        self.session_timeout_s = session_timeout_s
        self.idle_s = idle_s
        self.connects = 0  # connections opened through the tracker (what reuse saves)
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()  # idle timers close connections from their own thread
        self._reusing = 0
        self._settle_after = 0.0  # no waiting for busy boards to come free before this (monotonic) time
        self._uploads = itertools.count()
        self._environment: Optional[dict[str, Any]] = None

    @classmethod
    def shared(cls, tracker: TrackerAddress, key: str, wait_s: float = DEFAULT_WAIT_S,
               session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S) -> "BoardPool":
        """The pool of ``key`` at ``tracker`` that live runners already use, or a new one."""
        index = (tracker, key, wait_s, session_timeout_s)
        pool = _POOLS.get(index)
        if pool is None:
            pool = cls(tracker, key, wait_s, session_timeout_s)
            _POOLS[index] = pool
        return pool

    @contextmanager
    def reusing(self) -> Iterator[None]:
        """Within it, a connection its last session leaves stays open for the next one (closed on exit)."""
        with self._lock:
            self._reusing += 1
        try:
            yield
        finally:
            with self._lock:
                self._reusing -= 1
                idle = self._take_idle() if not self._reusing else []
            del idle  # the connections close with their last reference, outside the lock

    def upload_name(self, name: str) -> str:
        """A name for an upload that no other artifact on a shared connection has (the board's dlopen
        hands back a library already loaded from the same path)."""
        return f"u{next(self._uploads)}-{name}"

    def acquire(self, session: object) -> Board:
        """A board for ``session``: a kept idle connection, a free board, or a connection shared with a session of this pool."""
        connection = self._reuse_idle(session) or self._share(session)
        if connection is None:
            board = request_board(self.tracker, self.key, self.wait_s, self.session_timeout_s)
            connection = _Connection(board, time.monotonic(), [session])
            with self._lock:
                self.connects += 1
                self._connections.append(connection)
        return connection.board

    def release(self, session: object, board: Board, healthy: bool = True) -> None:
        """``session`` is done with ``board``; an unhealthy board is given to no one again."""
        closing: list[_Connection] = []
        with self._lock:
            connection = next((c for c in self._connections if c.board is board), None)
            if connection is None:
                return
            if session in connection.users:
                connection.users.remove(session)
            if not healthy or (not connection.users and not (self._reusing and self._fresh(connection))):
                self._connections.remove(connection)
                closing.append(connection)
            elif not connection.users:
                connection.idle_timer = threading.Timer(self.idle_s, self._expire, (connection,))
                connection.idle_timer.daemon = True
                connection.idle_timer.start()
        del closing

    def connected(self) -> int:
        """Connections open now (in use or kept idle)."""
        with self._lock:
            return len(self._connections)

    def _fresh(self, connection: _Connection) -> bool:
        # the board ends a connection after session_timeout_s: hand out only ones with time to spare
        return time.monotonic() - connection.opened_at < self.session_timeout_s / 2

    def _take_idle(self) -> list[_Connection]:
        idle = [c for c in self._connections if not c.users]
        for connection in idle:
            self._connections.remove(connection)
            _stop_timer(connection)
        return idle

    def _expire(self, connection: _Connection) -> None:
        with self._lock:
            if connection.users or connection not in self._connections:
                return
            self._connections.remove(connection)
            connection.idle_timer = None

    def _reuse_idle(self, session: object) -> Optional[_Connection]:
        with self._lock:
            connection = next((c for c in self._connections if not c.users and self._fresh(c)), None)
            if connection is None:
                return None
            _stop_timer(connection)
            connection.users.append(session)
        status = farm_status(self.tracker).key(self.key)
        if status is not None and status.pending > 0:  # another client waits for a board of the key: give them back
            with self._lock:
                connection.users.remove(session)
                idle = self._take_idle()
            del idle
            return None
        return connection

    def _share(self, session: object) -> Optional[_Connection]:
        with self._lock:
            candidates = [c for c in self._connections if c.users and self._fresh(c)]
            held = len(self._connections)
        if not candidates:
            return None
        status = farm_status(self.tracker).key(self.key)
        if status is not None and status.free == 0 and status.boards > held and time.monotonic() >= self._settle_after:
            # boards this pool does not hold may be registering again after a session: use them rather than
            # share, unless they stay busy (another client's), which is then not waited for again for a while
            deadline = time.monotonic() + SETTLE_S
            while status is not None and status.free == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
                status = farm_status(self.tracker).key(self.key)
            if status is not None and status.free == 0:
                self._settle_after = time.monotonic() + 15 * SETTLE_S
        if status is None or status.free > 0:
            return None
        with self._lock:
            candidates = [c for c in candidates if c in self._connections]
            if not candidates:
                return None
            connection = min(candidates, key=lambda c: len(c.users))
            connection.users.append(session)
        return connection

    def learn(self, board: Board) -> None:
        """Remember ``board``'s environment unless one is known (a plain TVM server has none to give)."""
        if self._environment is not None:
            return
        try:
            report = board.session.get_function(BOARD_ENVIRONMENT)
        except AttributeError:
            self._environment = {"cpu_model": f"unknown ({PLAIN_SERVER})"}
            return
        self._environment = json.loads(str(report()))

    def environment(self) -> dict[str, Any]:
        """The board environment, asking a board of the key for it when no session has met one yet."""
        if self._environment is None:
            probe = object()
            board = self.acquire(probe)
            try:
                self.learn(board)
            finally:
                self.release(probe, board)
        assert self._environment is not None
        return dict(self._environment)


def _stop_timer(connection: _Connection) -> None:
    # the timer holds the connection: left in place, the pair is a cycle that keeps the board busy until a GC
    if connection.idle_timer is not None:
        connection.idle_timer.cancel()
        connection.idle_timer = None


_POOLS: "weakref.WeakValueDictionary[tuple[TrackerAddress, str, float, float], BoardPool]" = weakref.WeakValueDictionary()
