"""Apache TVM Relax VM running a shared library built by the tvm lowering."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgetune.errors import RunnerError
from edgetune.runners._base import Runner, Session

# TVM's affinity mode "big cores": with uniform cores it means "use nthreads workers".
_AFFINITY_BIG = 1


def configure_threads(threads: int) -> None:
    """Pin TVM's runtime thread pool to ``threads`` workers."""
    import tvm

    os.environ["TVM_NUM_THREADS"] = str(threads)  # read by pools created later (e.g. RPC workers)
    tvm.get_global_func("runtime.config_threadpool")(_AFFINITY_BIG, threads)


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
        except Exception as exc:
            raise RunnerError(f"TVM cannot load '{artifact.name}': {str(exc).splitlines()[0][:300]}") from None
        device = tvm.cpu()
        return TvmSession(relax.VirtualMachine(lib, device), device)

    def versions(self) -> dict[str, str]:
        import tvm

        return {"tvm": tvm.__version__}
