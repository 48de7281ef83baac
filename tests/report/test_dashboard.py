"""HTML reports render in headless Chromium without console errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import ConfigError
from edgetune.report import pareto_front, write_dashboard
from tests.bench.test_compare import _rows

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _history() -> list[dict]:
    rows = []
    for run, median in (("r1", 1.0), ("r2", 1.0), ("r3", 1.3)):  # the third run regressed
        for row in _rows(run, [median, median, median], seed=hash(run) % 100):
            row.update(target="host-cpu", ci_low_ms=median * 0.99, ci_high_ms=median * 1.01, simulated=0)
            rows.append(row)
    return rows


def test_dashboard_highlights_the_regression(tmp_path: Path) -> None:
    page = write_dashboard(_history(), tmp_path / "d.html", "test store").read_text()
    assert page.count('class="trend"') == 1 and 'class="bad"' in page and "regression" in page
    assert "<script" not in page  # self-contained, nothing to execute or fetch
    with pytest.raises(ConfigError, match="no measurements"):
        write_dashboard([], tmp_path / "e.html", "empty store")


def test_pareto_front() -> None:
    points = [("a", 1.0, 0.90), ("b", 2.0, 0.95), ("c", 2.5, 0.93), ("d", 0.5, 0.80)]
    assert pareto_front(points) == {"a", "b", "d"}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (tools/setup-system.sh installs it as root)")
def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = write_dashboard(_history(), tmp_path / "d.html", "test store")
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    pixels = np.frombuffer(shot.read_bytes()[:64], dtype=np.uint8)
    assert pixels[:8].tobytes() == b"\x89PNG\r\n\x1a\n"
