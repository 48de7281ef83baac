"""Isolated timing: every timed session lives alone in its own worker process.

A deployed model runs alone on its device, so that is how it is timed. Two runtimes in one process
distort each other: ONNX Runtime's intra-op threads spin after each run and OpenVINO's pool stays
busy, and on 2 cores four sessions in one process came out 1.3-2.5x slower than each alone.

So a host-timed session is loaded in a freshly spawned Python process (never a fork of a parent
holding heavy imports) that holds one runtime and at most one artifact at a time; the runner sets
its threads and affinity there. The timing loop runs inside the worker, so the pipe never enters a
sample. The parent drives workers one at a time and stops every worker (SIGSTOP) whenever it is not
serving a request, so an idle worker's runtime threads cannot run while another is timed; the parent
itself waits on the pipe, holding no session.

A worker that crashes (a segfault in a runtime), hangs past its timeout, or is killed (out of
memory) fails only its own session, with the reason; the others go on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from edgetune.bench._harness import BenchConfig, SamplingSession, TimingSampler
from edgetune.bench._memory import current_rss_mb, peak_rss_mb, reset_peak_rss
from edgetune.errors import EdgetuneError, RunnerError, one_line
from edgetune.runners import NodeTime, Runner, Session

CALL_TIMEOUT_S = 300.0  # one request (a load, a block of runs); past it the worker is taken as hung


@dataclass(frozen=True)
class Block:
    """One block of timed runs as the worker saw it: which process ran it and when (CLOCK_MONOTONIC, ns)."""

    pid: int
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class LoadInfo:
    """What loading an artifact in a worker cost, and where it runs."""

    pid: int
    load_ms: float
    rss_before_mb: float
    cpus: tuple[int, ...]


def describe_cpus(cpus: Sequence[int]) -> str:
    """CPU ids as ranges: (0, 1, 2, 5) -> '0-2,5'."""
    parts: list[str] = []
    ordered = sorted(cpus)
    start = prev = ordered[0] if ordered else -1
    for cpu in ordered[1:] + [None]:  # type: ignore[operator]
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(parts)


class WorkerProcess:
    """A spawned Python process hosting sessions of one runner, one loaded artifact at a time.

    Every request resumes the process (SIGCONT), waits for its answer and stops it again (SIGSTOP):
    between requests none of its threads can run. The kernel kills it when the thread that started it
    ends (PR_SET_PDEATHSIG), so a session must not outlive the thread that loaded it.
    """

    def __init__(self, runner: Runner, timeout_s: float = CALL_TIMEOUT_S) -> None:
        import socket

        self.runner_name = runner.name
        self.timeout_s = timeout_s
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(_own_paths()))
        self._process = subprocess.Popen(
            # -c, not -m: edgetune.bench imports this module, and runpy warns when asked to run it again as __main__
            [sys.executable, "-c", "import sys; from edgetune.bench._worker import main; main(sys.argv[1:])",
             str(child_sock.fileno())],
            pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C reaches the parent, which closes its workers itself
            env=env,
        )
        child_sock.close()
        self._conn = Connection(parent_sock.detach())
        self.failure = ""  # why the process is gone, once it is
        try:
            self._conn.send(runner)  # the runner itself (a small picklable object), rebuilt there
        except BaseException:  # e.g. a runner that does not pickle: no process is left waiting for it
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return not self.failure and self._process.poll() is None

    def call(self, command: str, *args: Any, timeout_s: Optional[float] = None) -> Any:
        """Send one request and return its answer; raise RunnerError (the worker's own error, or why it died)."""
        if self.failure:
            raise RunnerError(self.failure)
        self._signal(signal.SIGCONT)
        try:
            self._conn.send((command, args))
            if not self._conn.poll(timeout_s or self.timeout_s):
                self._fail(f"the {self.runner_name} worker (pid {self.pid}) did not answer '{command}' within "
                           f"{timeout_s or self.timeout_s:g} s and was killed")
            answer = self._conn.recv()
        except (EOFError, OSError):
            self._fail(self._death_reason(command))
        finally:
            if not self.failure:
                self._pause()
        kind, value = answer
        if kind == "ok":
            return value
        raise _error(kind, value)

    def _pause(self) -> None:
        """Stop the process and wait until it has stopped, so that none of its threads runs past this call."""
        if self._process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGSTOP)
        try:
            _, status = os.waitpid(self.pid, os.WUNTRACED)
        except ChildProcessError:  # pragma: no cover - reaped elsewhere
            return
        if not os.WIFSTOPPED(status):  # it ended meanwhile: keep its exit status for the reason
            self._process.returncode = os.waitstatus_to_exitcode(status)

    def _signal(self, sig: int) -> None:
        if self._process.poll() is None:
            os.kill(self.pid, sig)

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self.kill()
        raise RunnerError(reason)

    def _death_reason(self, command: str) -> str:
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        what = f"the {self.runner_name} worker (pid {self.pid}) died during '{command}'"
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory, or killed)" if -code == signal.SIGKILL else ""
            return f"{what}: {name}{hint}"
        return f"{what} with exit code {code}"

    def kill(self) -> None:
        """End the process now (resumed first: a stopped process holds a pending SIGTERM forever)."""
        if self._process.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)
                self._process.kill()
            except ProcessLookupError:  # pragma: no cover - it ended in between
                pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        self._conn.close()

    def close(self) -> None:
        """Ask the process to exit, and make sure it does."""
        if self.alive:
            try:
                self._signal(signal.SIGCONT)
                self._conn.send(("exit", ()))
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def _own_paths() -> list[str]:
    """This process's import paths outside the interpreter's own (the checkout, a test folder), so that
    the worker imports the same edgetune and the same runner classes."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return [p for p in sys.path if p and not any(os.path.realpath(p).startswith(x) for x in prefixes)]


def _error(kind: str, message: str) -> EdgetuneError:
    """The worker's error as the parent raises it: the same edgetune error class, else a RunnerError."""
    import edgetune.errors as errors

    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, EdgetuneError):
        return cls(message)
    return RunnerError(message)


class WorkerSampler(TimingSampler):
    """The harness's sampler, run inside the worker: the parent only receives the samples."""

    def __init__(self, session: "WorkerSession") -> None:
        super().__init__(session)
        self.worker = session

    def warmup(self, config: BenchConfig) -> None:
        self.runs_per_sample = self.worker.call("warmup", config)

    def sample(self, count: int) -> None:
        samples, block = self.worker.call("sample", count)
        self.samples_ms.extend(samples)
        self.blocks.append(block)


class WorkerSession(Session, SamplingSession):
    """A session loaded in a worker process: the proxy the parent holds."""

    def __init__(self, worker: WorkerProcess, artifact: Path, threads: int, release: Any) -> None:
        self.worker = worker
        self.threads = threads
        self._release = release
        self.info: LoadInfo = self.call("load", str(artifact), threads)

    def call(self, command: str, *args: Any) -> Any:
        return self.worker.call(command, *args)

    @property
    def mode(self) -> str:
        """How this session is measured, for tables and manifests."""
        return f"isolated worker, {self.threads} thread(s), cpus {describe_cpus(self.info.cpus)}"

    def sampler(self) -> WorkerSampler:
        return WorkerSampler(self)

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        self.call("set_inputs", dict(feeds))

    def invoke(self) -> None:
        self.call("invoke")

    def outputs(self) -> list[np.ndarray]:
        return list(self.call("outputs"))

    def run_many(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[list[np.ndarray]]:
        """Run each feed once, in one request."""
        return list(self.call("run_many", [dict(f) for f in feeds]))

    def peak_rss_mb(self) -> float:
        """The worker's peak resident memory since the load began."""
        return float(self.call("peak_rss"))

    def close(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(self)


class IsolatedRunner(Runner):
    """A runner whose sessions each live in a worker process of their own.

    Inside ``reusing()`` a closed session's process serves the next session of this runner (the
    artifact is unloaded first: one loaded artifact per process at any time); otherwise it exits.
    """

    def __init__(self, runner: Runner, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.inner = runner
        self.name = runner.name  # type: ignore[misc]
        self.artifact_format = runner.artifact_format  # type: ignore[misc]
        self.timeout_s = timeout_s
        self._idle: list[WorkerProcess] = []
        self._keep = 0

    def versions(self) -> dict[str, str]:
        return self.inner.versions()

    def __getattr__(self, name: str) -> Any:  # what else the runner declares (e.g. why it has no node times)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _take(self) -> WorkerProcess:
        """An idle worker process of this runner, or a new one."""
        return self._idle.pop() if self._idle else WorkerProcess(self.inner, self.timeout_s)

    def _give_back(self, worker: WorkerProcess) -> None:
        """Keep a live worker for the next session inside ``reusing()``; otherwise end it."""
        if worker.alive and self._keep:
            self._idle.append(worker)
        else:
            worker.close()

    def load(self, artifact: Path, threads: int) -> WorkerSession:
        worker = self._take()
        try:
            return WorkerSession(worker, artifact, threads, self._release)
        except BaseException:
            self._give_back(worker)
            raise

    def _release(self, session: WorkerSession) -> None:
        worker = session.worker
        if worker.alive and self._keep:
            try:
                worker.call("unload")  # one loaded artifact per process, also when it serves the next session
            except RunnerError:
                worker.close()
                return
        self._give_back(worker)

    @contextmanager
    def reusing(self) -> Iterator[None]:
        self._keep += 1
        try:
            yield
        finally:
            self._keep -= 1
            if not self._keep:
                self.close()

    def close(self) -> None:
        """End every idle worker process."""
        while self._idle:
            self._idle.pop().close()

    @property
    def profiles_nodes(self) -> bool:
        return self.inner.profiles_nodes

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,
                   warmup: int = 10) -> Optional[list[NodeTime]]:
        if not self.inner.profiles_nodes:
            return None
        worker = self._take()
        try:
            found = worker.call("node_times", str(artifact), threads, dict(feeds), runs, warmup)
        finally:
            self._give_back(worker)
        return found


def isolated(runner: Runner, timeout_s: float = CALL_TIMEOUT_S) -> Runner:
    """``runner`` with each session in a worker process of its own, when the host times its sessions.

    Boards and simulators time themselves (``Runner.host_timed`` is False); they are returned as they are.
    """
    if isinstance(runner, IsolatedRunner) or not runner.host_timed:
        return runner
    return IsolatedRunner(runner, timeout_s)


def measurement_mode(session: Session, threads: int) -> str:
    """How ``session`` is timed, in words (for tables, manifests and reports)."""
    if isinstance(session, WorkerSession):
        return session.mode
    if session.device_timed(0) is not None:
        return f"timed by the device, {threads} thread(s)"
    return f"in-process, {threads} thread(s)"


# ----------------------------------------------------------------------------------------------
# The worker side.


@dataclass
class _Worker:
    """State of the worker process: its runner and the one session it holds."""

    runner: Runner
    session: Optional[Session] = None
    sampler: Optional[TimingSampler] = None
    handlers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.handlers = {
            "load": self.load, "unload": self.unload, "set_inputs": self.set_inputs, "invoke": self.invoke,
            "outputs": self.outputs, "run_many": self.run_many, "warmup": self.warmup, "sample": self.sample,
            "peak_rss": peak_rss_mb, "node_times": self.node_times,
        }

    def _loaded(self) -> Session:
        if self.session is None:
            raise RunnerError("no artifact is loaded in this worker")
        return self.session

    def load(self, artifact: str, threads: int) -> LoadInfo:
        self.unload()
        before = current_rss_mb()
        reset_peak_rss()
        start = time.perf_counter()
        self.session = self.runner.load(Path(artifact), threads)
        self.sampler = TimingSampler(self.session)
        cpus = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()
        return LoadInfo(os.getpid(), (time.perf_counter() - start) * 1e3, before, cpus)

    def unload(self) -> None:
        if self.session is not None:
            self.session.close()
        self.session, self.sampler = None, None

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        self._loaded().set_inputs(feeds)
        if self.sampler is not None:
            self.sampler = TimingSampler(self._loaded())

    def invoke(self) -> None:
        self._loaded().invoke()

    def outputs(self) -> list[np.ndarray]:
        return [np.ascontiguousarray(o) for o in self._loaded().outputs()]

    def run_many(self, feeds: list[Mapping[str, np.ndarray]]) -> list[list[np.ndarray]]:
        session = self._loaded()
        return [[np.ascontiguousarray(o) for o in session.run(f)] for f in feeds]

    def warmup(self, config: BenchConfig) -> int:
        assert self.sampler is not None
        self._loaded()
        self.sampler.warmup(config)
        return self.sampler.runs_per_sample

    def sample(self, count: int) -> tuple[list[float], Block]:
        sampler = self.sampler
        if sampler is None or self.session is None:
            raise RunnerError("no artifact is loaded in this worker")
        sampler.samples_ms.clear()
        start = time.monotonic_ns()
        sampler.sample(count)
        return list(sampler.samples_ms), Block(os.getpid(), start, time.monotonic_ns())

    def node_times(self, artifact: str, threads: int, feeds: Mapping[str, np.ndarray], runs: int,
                   warmup: int) -> Optional[list[NodeTime]]:
        self.unload()
        return self.runner.node_times(Path(artifact), threads, feeds, runs, warmup)


def _die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (even while it is stopped)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _serve(conn: Connection) -> None:
    try:
        runner = conn.recv()
    except (EOFError, OSError):
        return
    state = _Worker(runner)
    try:
        while True:
            try:
                command, args = conn.recv()
            except (EOFError, OSError, KeyboardInterrupt):
                return
            if command == "exit":
                return
            try:
                conn.send(("ok", state.handlers[command](*args)))
            except EdgetuneError as exc:
                conn.send((type(exc).__name__, str(exc)))
            except Exception as exc:  # noqa: BLE001 - a runtime's own error fails this request, not the worker
                conn.send(("RunnerError", one_line(exc, typed=True)))
    finally:  # the parent said exit, or is gone: the loaded session is closed either way
        state.unload()


def main(argv: Sequence[str]) -> None:
    """Entry point of a worker process: serve requests on the inherited socket until told to exit."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when an interrupt ends the work
    import socket

    sock = socket.socket(fileno=int(argv[0]))
    _serve(Connection(sock.detach()))
