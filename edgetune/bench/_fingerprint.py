"""Environment fingerprint: what a latency number depends on besides the artifact."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Mapping, Optional

# A runner that measures on another machine (an RPC board) reports that machine's
# machine_environment() as JSON under BOARD_ENVIRONMENT_KEY of Runner.versions(); environment()
# records it in place of the workstation's CPU, cores and libraries.
from edgetune.runners import BOARD_ENVIRONMENT_KEY
from edgetune.targets import Target, detect_host

_GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def machine_environment() -> dict[str, Any]:
    """This machine's part of the fingerprint: CPU, cores, governor, Python, numpy, edgetune."""
    import numpy

    from edgetune import __version__

    host = detect_host()
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {
        "cpu_model": host.model,
        "arch": host.arch,
        "cores_logical": host.cores_logical,
        "affinity": affinity,
        "governor": _GOVERNOR.read_text().strip() if _GOVERNOR.exists() else "unknown",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "edgetune": __version__,
    }


def environment(target: Target, threads: int, versions: Mapping[str, str]) -> dict[str, Any]:
    """The environment a measurement is taken in (without the artifact): the board's, when a runner reports one."""
    libraries = dict(versions)
    board = libraries.pop(BOARD_ENVIRONMENT_KEY, None)
    machine = machine_environment()
    if board is not None:
        remote = json.loads(board)
        libraries.update(remote.pop("libraries", {}))
        machine = {**{name: "unknown" for name in machine}, **remote}
    return {"target": target.name, **machine, "threads": threads, "libraries": dict(sorted(libraries.items()))}


def fingerprint_hash(env: Mapping[str, Any]) -> str:
    """A short stable hash of an environment dict, for grouping comparable measurements."""
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]


def git_commit(cwd: Optional[Path] = None) -> Optional[str]:
    """The git commit of the project under test (the current folder), when there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
