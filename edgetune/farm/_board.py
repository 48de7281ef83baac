"""What `edgetune farm serve` adds to TVM's RPC server: global functions a workstation calls over RPC.

``edgetune.board_environment()`` reports the board's CPU, cores and runtime versions (for the
fingerprint of results measured there); ``edgetune.runtime_versions()`` says which runtimes the
board has; ``edgetune.measure(...)`` loads an uploaded ONNX Runtime or LiteRT artifact with
edgetune's own runner for it, binds inputs, runs or times it on the board; ``edgetune.output(i)``
returns an output of the last run. They are registered in the server process before it serves, so
every session process TVM forks has them; the loaded artifact lives in that session process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

BOARD_ENVIRONMENT = "edgetune.board_environment"
RUNTIME_VERSIONS = "edgetune.runtime_versions"
MEASURE = "edgetune.measure"
OUTPUT = "edgetune.output"
LOAD_ONLY = -1  # MEASURE's repeat that loads and binds without running
BOARD_RUNTIMES = ("onnxruntime", "litert")  # run through MEASURE; TVM artifacts go through the Relax VM


def runtime_versions() -> dict[str, dict[str, Any]]:
    """Each board runtime: whether it is installed here, why not, and its library versions."""
    from edgetune.runners import runner_registry

    found: dict[str, dict[str, Any]] = {}
    for name in BOARD_RUNTIMES:
        available = runner_registry[name].availability()
        versions = runner_registry[name]().versions() if available.ok else {}
        found[name] = {"installed": available.ok, "reason": available.reason, "versions": versions}
    return found


def board_environment() -> dict[str, Any]:
    """This board's fingerprint fields, with the versions of the runtimes installed on it."""
    from edgetune.bench._fingerprint import machine_environment

    libraries: dict[str, str] = {}
    for runtime in runtime_versions().values():
        libraries.update(runtime["versions"])
    try:
        import tvm

        libraries["tvm"] = tvm.__version__
    except ImportError:  # pragma: no cover - a board serving RPC has TVM
        pass
    return {**machine_environment(), "libraries": libraries}


class BoardMeasurer:
    """The artifact one RPC session has loaded on this board, and its last outputs."""

    def __init__(self) -> None:
        self._loaded: Optional[tuple[str, str, int]] = None
        self._session: Any = None
        self._sampler: Any = None
        self._warm = False
        self._outputs: list[np.ndarray] = []

    def _load(self, path: str, runtime: str, threads: int) -> None:
        from edgetune.bench._harness import TimingSampler
        from edgetune.errors import RunnerError
        from edgetune.runners import get_runner, runner_registry

        if runtime not in BOARD_RUNTIMES:
            raise RunnerError(f"runtime {runtime} does not run through edgetune.measure (board runtimes: "
                              f"{', '.join(BOARD_RUNTIMES)})")
        available = runner_registry[runtime].availability()
        if not available.ok:
            raise RunnerError(f"runtime {runtime} is not installed on this board: {available.reason}")
        if self._session is not None:
            self._session.close()
        self._session, self._loaded = None, None
        self._session = get_runner(runtime).load(Path(path), threads)
        self._sampler, self._warm, self._loaded = TimingSampler(self._session), False, (path, runtime, threads)

    def measure(self, artifact: str, runtime: str, threads: int, repeat: int, names: str, *inputs: Any) -> str:
        """Load ``artifact`` (once), bind ``inputs`` if given, then time ``repeat`` runs (0: run once, -1: none)."""
        from edgetune.bench._harness import BenchConfig

        path = _workpath(artifact)
        if self._loaded != (path, runtime, int(threads)):
            self._load(path, runtime, int(threads))
        if inputs:
            self._session.set_inputs({name: np.asarray(t.numpy()) for name, t in zip(json.loads(names), inputs)})
            self._warm = False
        samples: list[float] = []
        if repeat == LOAD_ONLY:
            return json.dumps({"samples_ms": [], "outputs": len(self._outputs), "runs_per_sample": 1})
        if repeat == 0:
            self._session.invoke()
        else:
            if not self._warm:  # the harness's own warm-up, on the board (it also sets the group size)
                self._sampler.warmup(BenchConfig())
                self._warm = True
            start = len(self._sampler.samples_ms)
            self._sampler.sample(int(repeat))
            samples = self._sampler.samples_ms[start:]
        self._outputs = [np.ascontiguousarray(o) for o in self._session.outputs()]
        return json.dumps({"samples_ms": samples, "outputs": len(self._outputs),
                           "runs_per_sample": self._sampler.runs_per_sample})

    def output(self, index: int) -> Any:
        """Output ``index`` of the last run, as a tensor the client copies back."""
        import tvm

        return tvm.runtime.tensor(self._outputs[int(index)])


def _workpath(name: str) -> str:
    """An uploaded file's path in this session's work folder (absolute paths are taken as they are)."""
    if Path(name).is_absolute():
        return name
    import tvm

    return str(tvm.get_global_func("tvm.rpc.server.workpath")(name))


def register_board_functions() -> None:
    """Register the edgetune.* functions with TVM's function registry (before the RPC server forks)."""
    import tvm_ffi

    measurer = BoardMeasurer()
    # taken once, before any session runs: TVM's thread pool pins the affinity of the process that
    # runs it (config_threadpool), which would otherwise shrink the cores a later call reports
    environment = json.dumps(board_environment())
    tvm_ffi.register_global_func(BOARD_ENVIRONMENT, lambda: environment, override=True)
    tvm_ffi.register_global_func(RUNTIME_VERSIONS, lambda: json.dumps(runtime_versions()), override=True)
    tvm_ffi.register_global_func(MEASURE, measurer.measure, override=True)
    tvm_ffi.register_global_func(OUTPUT, measurer.output, override=True)
