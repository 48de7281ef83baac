"""Whether a target can run here, and why not."""

from __future__ import annotations

from dataclasses import dataclass

from edgetune.errors import TargetNotRunnableError
from edgetune.targets._host import detect_host
from edgetune.targets._schema import Target


@dataclass(frozen=True)
class Runnability:
    """Answer to "can this target run on this machine?" with the reason."""

    runnable: bool
    reason: str


def runnability(target: Target) -> Runnability:
    """Decide whether ``target`` can run on this machine, naming what is missing."""
    if target.transport == "rpc":
        key = target.rpc_key or target.name
        return Runnability(False, f"remote board (RPC key '{key}'); this edgetune cannot reach RPC boards yet")
    if target.transport == "sim":
        return _simulator_runnability(target)
    if target.kind == "gpu":
        return Runnability(False, "GPU targets are compile-only in this edgetune")
    host = detect_host()
    if target.cpu.arch not in ("auto", host.arch):
        return Runnability(False, f"needs a {target.cpu.arch} CPU; this machine is {host.arch}")
    from edgetune.runners import runner_registry

    usable = [r for r in target.runtimes if r in runner_registry and runner_registry[r].availability().ok]
    if not usable:
        return Runnability(False, f"none of its runtimes ({', '.join(target.runtimes)}) is installed here")
    return Runnability(True, f"local; runtimes: {', '.join(usable)}")


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


def require_runnable(target: Target) -> None:
    """Raise TargetNotRunnableError with the reason when ``target`` cannot run here."""
    verdict = runnability(target)
    if not verdict.runnable:
        raise TargetNotRunnableError(f"target '{target.name}' cannot run on this machine: {verdict.reason}")
