"""How much of the machine was not ours while timing: other processes' CPU and the hypervisor's steal.

On a shared VM both move the numbers more than anything edgetune does (the same artifact, timed alone,
moved up to 2x between runs in a noisy hour). The harness cannot prevent them, so it measures them from
/proc/stat and says so beside the results instead of reporting them as the artifact's speed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

STEAL_WARN, OTHERS_WARN = 0.05, 0.10  # shares of all cores past which a result is called noisy


@dataclass(frozen=True)
class CpuShares:
    """Shares of all cores over an interval: taken by the hypervisor (steal) and by processes not ours."""

    steal: float
    others: float

    def warning(self) -> str:
        """A one-line warning when the interval was noisy, else ""."""
        parts = []
        if self.others > OTHERS_WARN:
            parts.append(f"other processes used {self.others:.0%} of the CPU")
        if self.steal > STEAL_WARN:
            parts.append(f"the hypervisor took {self.steal:.0%} (steal time)")
        if not parts:
            return ""
        return f"while timing, {' and '.join(parts)}: these latencies are noisier than on a quiet machine; re-run when it is idle"


def _cpu_line() -> Optional[list[int]]:
    try:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None


def _process_ticks(pid: int) -> int:
    """utime + stime (+ waited-for children) of a process in clock ticks; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(fields[i]) for i in (11, 12, 13, 14))
    except (OSError, ValueError, IndexError):
        return 0


class MachineWatch:
    """Started before timing, read after it: the shares of the machine that were not ours meanwhile."""

    def __init__(self, pids: Iterable[int] = ()) -> None:
        self._start = _cpu_line()
        self._pids = {os.getpid(), *pids}
        self._own_start = {pid: _process_ticks(pid) for pid in self._pids}

    def shares(self) -> Optional[CpuShares]:
        end = _cpu_line()
        if self._start is None or end is None:
            return None
        delta = [b - a for a, b in zip(self._start, end)]
        total = sum(delta)
        if total <= 0:
            return None
        idle = delta[3] + delta[4]
        steal = delta[7]
        own = sum(max(_process_ticks(pid) - self._own_start[pid], 0) for pid in self._pids)
        others = max(total - idle - steal - own, 0)
        return CpuShares(steal=steal / total, others=others / total)
