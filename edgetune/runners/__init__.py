"""Runners: one per runtime, transport or simulator, all behind the Runner ABC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from edgetune.errors import ConfigError
from edgetune.runners._base import NodeTime, Runner, Session, device_for
from edgetune.runners._litert import LiteRtRunner
from edgetune.runners._openvino import OpenVinoRunner
from edgetune.runners._ort import OrtRunner
from edgetune.runners._protocol import (
    BOARD_ENVIRONMENT,
    BOARD_ENVIRONMENT_KEY,
    BOARD_RUNTIMES,
    LOAD_ONLY,
    MEASURE,
    OUTPUT,
    RUNTIME_VERSIONS,
    UNLOAD,
)
from edgetune.runners._runnable import Runnability, require_runnable, runnability
from edgetune.runners._scalesim import ScaleSimRunner
from edgetune.runners._tflm import TflmRunner
from edgetune.runners._tvm import TvmRunner
from edgetune.runners._vela import VelaRunner

if TYPE_CHECKING:
    from edgetune.targets import Target

runner_registry: dict[str, type[Runner]] = {cls.name: cls for cls in (OrtRunner, TvmRunner, LiteRtRunner, OpenVinoRunner, VelaRunner, ScaleSimRunner, TflmRunner)}


def get_runner(name: str, device: str = "cpu") -> Runner:
    """Return a Runner by name, running on ``device`` ("cpu", "cuda"); an unknown name lists the valid ones."""
    try:
        cls = runner_registry[name]
    except KeyError:
        raise ConfigError(f"unknown runtime '{name}'; valid runtimes: {', '.join(sorted(runner_registry))}") from None
    return cls.on_device(device)


def runner_for(name: str, target: "Target", rpc_tracker: Optional[str] = None,
               notify: Optional[Callable[[str], None]] = None) -> Runner:
    """The runner measuring runtime ``name`` on ``target``: local, or on its boards through the RPC tracker.

    ``rpc_tracker`` is HOST:PORT (default $EDGETUNE_RPC_TRACKER); ``notify`` hears about board faults.
    On a GPU target the runner runs on the GPU (ONNX Runtime's CUDA provider), locally or on the boards.
    """
    if target.transport != "rpc":
        return get_runner(name, device_for(target))
    from edgetune.runners._rpc import remote_runner

    return remote_runner(name, target, rpc_tracker, notify)


__all__ = [
    "BOARD_ENVIRONMENT",
    "BOARD_ENVIRONMENT_KEY",
    "BOARD_RUNTIMES",
    "LOAD_ONLY",
    "MEASURE",
    "OUTPUT",
    "RUNTIME_VERSIONS",
    "UNLOAD",
    "Runnability",
    "require_runnable",
    "runnability","NodeTime", "Runner", "Session", "device_for", "get_runner", "runner_for", "runner_registry"]
