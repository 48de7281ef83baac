"""Apache TVM Relax VM running a shared library built by the tvm lowering."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from edgetune.errors import RunnerError, one_line
from edgetune.runners._base import NodeTime, Runner, Session

_NODE_BUDGET_S = 3.0  # per-node profiling of one network: at most about this long once 5 runs are in
# TVM's affinity mode "big cores": with uniform cores it means "use nthreads workers".
_AFFINITY_BIG = 1


# TVM's config_threadpool also pins the calling thread to one core, and everything that runs in
# that thread later (OpenVINO, which caps its threads at the affinity it sees, or a process it
# starts) would inherit the pin: the affinity found before the first open session is put back
# when the last one closes. TVM_NUM_THREADS likewise holds while a session is open, and the
# value from before (or its absence) comes back after the last one.
_PINNED: dict[str, object] = {"open": 0, "saved": None, "env": None}
_THREADS_ENV = "TVM_NUM_THREADS"


def configure_threads(threads: int) -> None:
    """Pin TVM's runtime thread pool to ``threads`` workers."""
    import tvm

    if _PINNED["open"] == 0:
        _PINNED["env"] = os.environ.get(_THREADS_ENV)
        if hasattr(os, "sched_getaffinity"):
            _PINNED["saved"] = os.sched_getaffinity(0)
    os.environ[_THREADS_ENV] = str(threads)  # read by pools created later (e.g. RPC workers)
    _PINNED["open"] = int(_PINNED["open"]) + 1  # type: ignore[call-overload]
    tvm.get_global_func("runtime.config_threadpool")(_AFFINITY_BIG, threads)


def release_threads() -> None:
    """One session fewer pins the thread; the last one to close gives the thread its affinity and TVM_NUM_THREADS back."""
    if _PINNED["open"] == 0:
        return  # nothing pinned: an extra release must not clear a value set outside edgetune
    _PINNED["open"] = int(_PINNED["open"]) - 1  # type: ignore[call-overload]
    if int(_PINNED["open"]) > 0:  # type: ignore[call-overload]
        return
    previous = _PINNED["env"]
    if previous is None:
        os.environ.pop(_THREADS_ENV, None)
    else:
        os.environ[_THREADS_ENV] = str(previous)
    if _PINNED["saved"] is not None:
        try:
            os.sched_setaffinity(0, _PINNED["saved"])  # type: ignore[arg-type]
        except OSError:  # pragma: no cover - cores taken away meanwhile (cgroup change)
            pass
        _PINNED["saved"] = None


class TvmSession(Session):
    def __init__(self, vm: Any, device: Any) -> None:
        self._vm = vm
        self._device = device
        self._args: list[Any] = []
        self._result: Any = None

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        import tvm

        self._args = [tvm.runtime.tensor(np.ascontiguousarray(v), self._device) for v in feeds.values()]

    def invoke(self) -> None:
        self._result = self._vm["main"](*self._args)

    def close(self) -> None:
        if self._vm is not None:
            release_threads()
        self._vm = None
        self._args = []
        self._result = None

    def outputs(self) -> list[np.ndarray]:
        result = self._result
        items = list(result) if not hasattr(result, "numpy") else [result]
        return [np.asarray(item.numpy()) for item in items]


class TvmRunner(Runner):
    """Loads an exported Relax executable (.so) into the VM on the host CPU."""

    name = "tvm"
    artifact_format = "tvm-lib"
    modules = ("tvm",)
    extra = "tvm"

    def load(self, artifact: Path, threads: int) -> Session:
        import tvm
        from tvm import relax

        configure_threads(threads)
        try:
            lib = tvm.runtime.load_module(str(artifact))
            device = tvm.cpu()
            return TvmSession(relax.VirtualMachine(lib, device), device)
        except Exception as exc:
            release_threads()
            raise RunnerError(f"TVM cannot load '{artifact.name}': {one_line(exc)}") from None

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,
                   warmup: int = 10) -> Optional[list[NodeTime]]:
        """Each compiled function the Relax VM calls, timed around the call (``vm.set_instrument``), in order.

        The VM's own builtins (allocation, reshapes) are left out; their cost shows in the
        end-to-end latency. Names are ``<position>:<function>``: TVM names functions after the
        operator (conv2d2, max_pool2d, add3), not after the model's nodes.
        """
        import time

        from tvm import relax

        session = self.load(artifact, threads)
        assert isinstance(session, TvmSession)
        calls: list[tuple[str, float]] = []
        started: list[float] = []

        def instrument(_func: Any, symbol: Any, before: bool, _ret: Any, *_args: Any) -> Any:
            if before:
                started.append(time.perf_counter())
            else:
                calls.append((str(symbol), (time.perf_counter() - started.pop()) * 1e3))
            return relax.VMInstrumentReturnKind.NO_OP

        per_run: list[list[tuple[str, float]]] = []
        with session:  # closed (its thread pin released) also when a run fails
            session._vm.set_instrument(instrument)
            session.set_inputs(feeds)
            begin = time.perf_counter()
            for run in range(warmup + runs):
                calls.clear()
                session.invoke()
                per_run.append([c for c in calls if not c[0].startswith("vm.builtin.")])
                elapsed = time.perf_counter() - begin
                if run + 1 < warmup and elapsed > _NODE_BUDGET_S / 3:
                    warmup = run + 1  # untuned TVM can take 100s of ms a run: a shorter warm-up, then at least 5 runs
                if run + 1 >= warmup + 5 and elapsed > _NODE_BUDGET_S:
                    break
        kept = per_run[warmup:] or per_run
        out = []
        for position, (symbol, _ms) in enumerate(kept[0]):
            values = sorted(run[position][1] for run in kept if len(run) > position)
            out.append(NodeTime(f"{position}:{symbol}", symbol, float(np.mean(values[: max(1, len(values) // 2)])), values[0]))
        return out

    def versions(self) -> dict[str, str]:
        import tvm

        return {"tvm": tvm.__version__}
