"""Noisy phases are noticed and said, not reported as the artifact's speed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from edgetune.bench import CpuShares, MachineWatch
from edgetune.bench._noise import _process_ticks


def test_a_quiet_interval_gives_no_warning_and_a_noisy_one_says_why() -> None:
    assert CpuShares(steal=0.01, others=0.02).warning() == ""
    noisy = CpuShares(steal=0.12, others=0.4).warning()
    assert "other processes used 40% of the CPU" in noisy and "hypervisor took 12% (steal time)" in noisy
    assert "re-run when it is idle" in noisy


def test_a_process_spinning_is_other_load_unless_it_is_ours() -> None:
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)  # the interpreter has started and spins
        ticks = _process_ticks(spinner.pid)
        theirs, ours = MachineWatch(), MachineWatch([spinner.pid])
        time.sleep(1.0)
        spun = (_process_ticks(spinner.pid) - ticks) / os.sysconf("SC_CLK_TCK")  # CPU seconds it got meanwhile
        a, b = theirs.shares(), ours.shares()
    finally:
        spinner.kill()
        spinner.wait()
    assert a is not None and b is not None and 0 <= a.steal <= 1
    assert spun > 0 and b.others < a.others  # the same interval: only whose the spinner is differs
