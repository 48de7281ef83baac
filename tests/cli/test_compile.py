"""`edgetune compile` options for pruning to a latency goal and quantization-aware training."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import edgetune, error_line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["{pt2}", "--prune-to-latency-ms", "1"], "pruning needs a PyTorch model"),
        (["{onnx}", "--prune-to-latency-ms", "-1"], "--prune-to-latency-ms must be a positive"),
        (["{onnx}", "--qat", "always"], "--qat always needs --train"),
        (["{onnx}", "--qat", "sometimes"], "Invalid value for '--qat'"),
    ],
)
def test_option_errors_are_one_line(args: list[str], needle: str, tiny_onnx: Path, tiny_pt2: Path,
                                    tmp_path: Path) -> None:
    proc = edgetune("compile", *[a.format(onnx=tiny_onnx, pt2=tiny_pt2) for a in args], "-o", str(tmp_path / "out"),
                    "--runtime", "onnxruntime", "--budget-s", "0.3")
    assert proc.returncode != 0
    assert needle in error_line(proc)
    assert "Traceback" not in proc.stderr


def test_unreachable_latency_goal_is_one_line(tmp_path: Path) -> None:
    # measured for real: no inference runs in a nanosecond, so even the largest ratio misses
    proc = edgetune("compile", "tests.conftest:tiny_factory", "--input-shape", "1x1x8x8", "--runtime", "onnxruntime",
                    "--prune-to-latency-ms", "0.000001", "--budget-s", "0.3", "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    line = error_line(proc)
    assert "out of reach by pruning" in line and "0.9" in line and "--prune RATIO" in line
    assert "too narrow" in line  # 4 channels: torch-pruning keeps the layer whole at 0.9
    assert "Traceback" not in proc.stderr
