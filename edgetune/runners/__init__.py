"""Runners: one per runtime, transport or simulator, all behind the Runner ABC."""

from __future__ import annotations

from edgetune.errors import ConfigError
from edgetune.runners._base import Runner, Session
from edgetune.runners._litert import LiteRtRunner
from edgetune.runners._openvino import OpenVinoRunner
from edgetune.runners._ort import OrtRunner
from edgetune.runners._tvm import TvmRunner
from edgetune.runners._vela import VelaRunner

runner_registry: dict[str, type[Runner]] = {cls.name: cls for cls in (OrtRunner, TvmRunner, LiteRtRunner, OpenVinoRunner, VelaRunner)}


def get_runner(name: str) -> Runner:
    """Return a Runner by name; an unknown name lists the valid ones."""
    try:
        return runner_registry[name]()
    except KeyError:
        raise ConfigError(f"unknown runtime '{name}'; valid runtimes: {', '.join(sorted(runner_registry))}") from None


__all__ = ["Runner", "Session", "get_runner", "runner_registry"]
