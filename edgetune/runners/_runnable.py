"""Whether a target can run here, and why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from edgetune.errors import ConfigError, TargetNotRunnableError
from edgetune.targets import Target, detect_host


@dataclass(frozen=True)
class Runnability:
    """Answer to "can this target run on this machine?" with the reason."""

    runnable: bool
    reason: str


def runnability(target: Target, rpc_tracker: Optional[str] = None) -> Runnability:
    """Decide whether ``target`` can run on this machine, naming what is missing.

    An rpc target runs on boards behind a TVM RPC tracker: ``rpc_tracker`` (HOST:PORT) or
    $EDGETUNE_RPC_TRACKER; the tracker itself is only contacted when work is sent.
    """
    if target.transport == "rpc":
        return _remote_runnability(target, rpc_tracker)
    if target.transport == "sim":
        return _simulator_runnability(target)
    host = detect_host()
    if target.cpu.arch not in ("auto", host.arch):
        return Runnability(False, f"needs a {target.cpu.arch} CPU; this machine is {host.arch}")
    from edgetune.runners import runner_registry
    from edgetune.runners._base import device_for

    usable = [r for r in target.runtimes if r in runner_registry and runner_registry[r].availability().ok]
    if not usable:
        return Runnability(False, f"none of its runtimes ({', '.join(target.runtimes)}) is installed here")
    if target.kind == "gpu":
        return _gpu_runnability(target, usable, device_for(target))
    return Runnability(True, f"local; runtimes: {', '.join(usable)}")


def _gpu_runnability(target: Target, installed: list[str], device: str) -> Runnability:
    """A local GPU target runs with the runtimes that have a path to its GPU (ONNX Runtime's CUDA provider)."""
    from edgetune.runners import runner_registry

    if device == "cpu":
        vendor = target.gpu.vendor if target.gpu is not None else "unknown"
        return Runnability(False, f"GPU targets of vendor '{vendor}' are compile-only in this edgetune (only NVIDIA GPUs run)")
    usable = [r for r in installed if device in runner_registry[r].devices]
    if not usable:
        gpu_runtimes = sorted(name for name, cls in runner_registry.items() if device in cls.devices)
        return Runnability(False, f"none of its installed runtimes ({', '.join(installed)}) runs on an NVIDIA GPU in "
                                  f"this edgetune (GPU runtimes: {', '.join(gpu_runtimes)})")
    if "onnxruntime" in usable:
        from edgetune.runners._ort import ORT_PROVIDERS, provider_missing

        missing = provider_missing(ORT_PROVIDERS[device])
        if missing:
            return Runnability(False, missing)
    return Runnability(True, f"local NVIDIA GPU; runtimes: {', '.join(usable)}")


def _simulator_runnability(target: Target) -> Runnability:
    """A simulated device runs wherever one of its simulator runners is installed."""
    from edgetune.runners import runner_registry

    known = [runner_registry[r] for r in target.runtimes if r in runner_registry]
    usable = [r.name for r in known if r.availability().ok]
    if usable:
        return Runnability(True, f"simulated with {', '.join(usable)}")
    if not known:
        return Runnability(False, f"simulated device; no simulator among its runtimes ({', '.join(target.runtimes)}) is part of this edgetune")
    return Runnability(False, f"simulated device; {'; '.join(r.availability().reason for r in known)}")


def _remote_runnability(target: Target, rpc_tracker: Optional[str]) -> Runnability:
    from edgetune.runners import runner_registry
    from edgetune.runners._rpc import REMOTE_RUNTIMES
    from edgetune.runners._tracker_address import HOW_TO_CONFIGURE, resolve_tracker

    key = target.rpc_key or target.name
    try:
        tracker = resolve_tracker(rpc_tracker)
    except ConfigError as exc:
        return Runnability(False, f"remote board (RPC key '{key}'): {exc}")
    if tracker is None:
        return Runnability(False, f"remote board (RPC key '{key}'); no RPC tracker configured: {HOW_TO_CONFIGURE}")
    usable = [r for r in target.runtimes if r in REMOTE_RUNTIMES and runner_registry[r].availability().ok]
    if not usable:
        return Runnability(False, f"remote board (RPC key '{key}'): none of its runtimes ({', '.join(target.runtimes)}) "
                                  f"runs over RPC here (remote runtimes: {', '.join(REMOTE_RUNTIMES)}, installed locally)")
    return Runnability(True, f"remote board (RPC key '{key}') via the RPC tracker at {tracker}; runtimes: {', '.join(usable)}")


def require_runnable(target: Target, rpc_tracker: Optional[str] = None) -> None:
    """Raise TargetNotRunnableError with the reason when ``target`` cannot run here."""
    verdict = runnability(target, rpc_tracker)
    if not verdict.runnable:
        raise TargetNotRunnableError(f"target '{target.name}' cannot run on this machine: {verdict.reason}")
