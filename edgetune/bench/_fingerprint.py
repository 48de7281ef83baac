"""Environment fingerprint: what a latency number depends on besides the artifact."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Mapping, Optional

from edgetune.targets import Target, detect_host

_GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def environment(target: Target, threads: int, versions: Mapping[str, str]) -> dict[str, Any]:
    """The environment a measurement is taken in (without the artifact)."""
    import numpy

    from edgetune import __version__

    host = detect_host()
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {
        "target": target.name,
        "cpu_model": host.model,
        "arch": host.arch,
        "cores_logical": host.cores_logical,
        "threads": threads,
        "affinity": affinity,
        "governor": _GOVERNOR.read_text().strip() if _GOVERNOR.exists() else "unknown",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "edgetune": __version__,
        "libraries": dict(sorted(versions.items())),
    }


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
