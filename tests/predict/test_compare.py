"""predict --compare-measured: predicted and measured per kernel, side by side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgetune.errors import ConfigError
from edgetune.predict import FlopsPredictor, KernelPredictor, to_onnx
from edgetune.predict._compare import compare_measured
from edgetune.targets import load_target
from tests.cli.test_cli import edgetune, error_line
from tests.predict.test_graph import _residual_net


def test_every_kernel_gets_its_measured_time(fake_profile: Path, tmp_path: Path) -> None:
    net = to_onnx(_residual_net(), tmp_path / "net.onnx")
    found = compare_measured(net, load_target("host-cpu"), "onnxruntime", KernelPredictor(fake_profile), runs=5, warmup=1)
    assert found.attributed and found.kernels
    assert all(k.measured_ms is not None and k.measured_ms >= 0 for k in found.kernels)
    # what the attribution hands out adds up to every node the profiler saw
    assert sum(k.measured_ms or 0.0 for k in found.kernels) == pytest.approx(found.measured_layers_ms, rel=1e-6)
    assert found.to_dict()["kernels"][0]["predicted_ms"] == found.kernels[0].predicted_ms


def test_the_flops_baseline_has_no_kernels_to_compare(fake_profile: Path, tmp_path: Path) -> None:
    net = to_onnx(_residual_net(), tmp_path / "net.onnx")
    with pytest.raises(ConfigError, match="needs the kernel predictor"):
        compare_measured(net, load_target("host-cpu"), "onnxruntime", FlopsPredictor(fake_profile))


def test_cli_shows_predicted_beside_measured(fake_profile: Path, tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    shutil.copytree(fake_profile, root / "host-cpu" / "onnxruntime")
    net = to_onnx(_residual_net(), tmp_path / "net.onnx")
    proc = edgetune("predict", str(net), "--profiles-dir", str(root), "--compare-measured")
    assert proc.returncode == 0, proc.stderr
    assert "predicted vs measured" in proc.stdout and "measured/predicted" in proc.stdout
    data = json.loads(edgetune("predict", str(net), "--profiles-dir", str(root), "--compare-measured", "--json").stdout)
    assert data["attributed"] and all(k["measured_ms"] is not None for k in data["kernels"])
    # --calibrate puts the predicted column at today's speed, as the measured one (it was dropped before)
    calibrated = json.loads(edgetune("predict", str(net), "--profiles-dir", str(root), "--compare-measured", "--calibrate",
                                     "--json").stdout)
    assert calibrated["machine_correction"]["calibration"]["networks"] >= 2
    factor = calibrated["machine_correction"]["calibration"]["factor"]
    assert calibrated["predicted_total_ms"] == pytest.approx(factor * data["predicted_total_ms"], rel=0.05)
    proc = edgetune("predict", str(net), "--profiles-dir", str(root), "--compare-measured", "--target", "rpi4")
    assert proc.returncode != 0 and "Error:" in error_line(proc)
