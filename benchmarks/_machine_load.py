"""How busy the machine was with other work while a benchmark ran (Linux /proc/stat), shared by the scripts."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

Snapshot = tuple[float, float, float]


def cpu_snapshot() -> Optional[Snapshot]:
    """(busy CPU seconds of the machine, this process's CPU seconds incl. children, wall clock) or None off Linux."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    own = os.times()
    return (sum(fields[:8]) - idle) / hz, own.user + own.system + own.children_user + own.children_system, time.monotonic()


def other_load(start: Optional[Snapshot]) -> Optional[float]:
    """Share of all cores used by OTHER processes since ``start`` (0 = idle apart from this benchmark)."""
    end = cpu_snapshot()
    if start is None or end is None or end[2] <= start[2]:
        return None
    busy_other = (end[0] - start[0]) - (end[1] - start[1])
    return max(0.0, busy_other / ((end[2] - start[2]) * (os.cpu_count() or 1)))
