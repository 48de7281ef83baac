"""What `edgetune farm serve` adds to TVM's RPC server: global functions a workstation calls over RPC.

``edgetune.board_environment()`` reports the board's CPU, cores and runtime versions (for the
fingerprint of results measured there); ``edgetune.runtime_versions()`` says which runtimes the
board has; ``edgetune.measure(...)`` loads an uploaded ONNX Runtime or LiteRT artifact with
edgetune's own runner for it on the device asked for (the CPU, or the GPU through ONNX Runtime's CUDA
provider), binds inputs, runs or times it on the board, or unloads it; ``edgetune.output(artifact, i)``
returns an output of that artifact's last run. They are registered in the server process before it
serves, so every session process TVM forks has them. Each loaded artifact (one per uploaded file;
several client sessions may share one connection) lives in a worker process of its own that the
session process spawns, as on the workstation: one runtime and one artifact per timing process, and
only one of them running at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.runners import (
    BOARD_ENVIRONMENT,
    BOARD_RUNTIMES,
    LOAD_ONLY,
    MEASURE,
    OUTPUT,
    RUNTIME_VERSIONS,
    UNLOAD,
)


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


@dataclass
class _Loaded:
    """One artifact loaded in this session process: how, its timing state and its last outputs."""

    how: tuple[str, str, int]  # runtime, device, threads
    session: Any
    sampler: Any
    warm: bool = False
    outputs: list[np.ndarray] = field(default_factory=list)


class BoardMeasurer:
    """The artifacts the sessions of one RPC connection have loaded on this board, and their last outputs."""

    def __init__(self) -> None:
        self._loaded: dict[str, _Loaded] = {}

    def _load(self, path: str, runtime: str, device: str, threads: int) -> _Loaded:
        from edgetune.bench import isolated
        from edgetune.bench._harness import sampler_for
        from edgetune.errors import RunnerError
        from edgetune.runners import get_runner, runner_registry

        if runtime not in BOARD_RUNTIMES:
            raise RunnerError(f"runtime {runtime} does not run through edgetune.measure (board runtimes: "
                              f"{', '.join(BOARD_RUNTIMES)})")
        available = runner_registry[runtime].availability()
        if not available.ok:
            raise RunnerError(f"runtime {runtime} is not installed on this board: {available.reason}")
        self._unload(path)
        # each loaded artifact in a worker process of its own, stopped while another one runs
        session = isolated(get_runner(runtime, device)).load(Path(path), threads)
        try:
            loaded = _Loaded((runtime, device, threads), session, sampler_for(session))
        except BaseException:
            session.close()
            raise
        self._loaded[path] = loaded
        return loaded

    def _unload(self, path: str) -> None:
        loaded = self._loaded.pop(path, None)
        if loaded is not None:
            loaded.session.close()

    def measure(self, artifact: str, runtime: str, device: str, threads: int, repeat: int, names: str,
                *inputs: Any) -> str:
        """Load ``artifact`` on ``device`` (once; again on LOAD_ONLY), bind ``inputs`` if given, then time
        ``repeat`` runs (0: run once, LOAD_ONLY: none, UNLOAD: free it)."""
        path, repeat, how = _workpath(artifact), int(repeat), (runtime, device, int(threads))
        if repeat == UNLOAD:
            self._unload(path)
            return json.dumps({"samples_ms": [], "outputs": 0, "runs_per_sample": 1})
        loaded = self._loaded.get(path)
        if loaded is None or loaded.how != how or repeat == LOAD_ONLY:
            loaded = self._load(path, *how)
        try:
            return self._run(loaded, repeat, names, inputs)
        except BaseException:  # a session that failed is not kept for the next call: closed now, loaded anew then
            self._unload(path)
            raise

    def _run(self, loaded: _Loaded, repeat: int, names: str, inputs: tuple[Any, ...]) -> str:
        from edgetune.bench._harness import BenchConfig

        if inputs:
            loaded.session.set_inputs({name: np.asarray(t.numpy()) for name, t in zip(json.loads(names), inputs)})
            loaded.warm = False
        samples: list[float] = []
        if repeat == LOAD_ONLY:
            return json.dumps({"samples_ms": [], "outputs": len(loaded.outputs), "runs_per_sample": 1})
        if repeat == 0:
            loaded.session.invoke()
        else:
            if not loaded.warm:  # the harness's own warm-up, on the board (it also sets the group size)
                loaded.sampler.warmup(BenchConfig())
                loaded.warm = True
            start = len(loaded.sampler.samples_ms)
            loaded.sampler.sample(repeat)
            samples = loaded.sampler.samples_ms[start:]
        loaded.outputs = [np.ascontiguousarray(o) for o in loaded.session.outputs()]
        return json.dumps({"samples_ms": samples, "outputs": len(loaded.outputs),
                           "runs_per_sample": loaded.sampler.runs_per_sample})

    def output(self, artifact: str, index: int) -> Any:
        """Output ``index`` of ``artifact``'s last run, as a tensor the client copies back."""
        import tvm

        return tvm.runtime.tensor(self._loaded[_workpath(artifact)].outputs[int(index)])


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
