"""ONNX Runtime int8: QDQ graphs with per-channel weights, each calibration method, dynamic mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.data import load_dataset
from edgetune.errors import ConfigError
from edgetune.lowering import CalibrationData, LoweringContext, get_lowering
from edgetune.models import export_zoo_model, load_model
from edgetune.runners import get_runner
from edgetune.targets import load_target


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("digits")
    export_zoo_model("digits-cnn", folder / "d.onnx", train_epochs=10)
    return load_model(folder / "d.onnx", workdir=folder), load_dataset("digits")


def _agreement(a: Path, b: Path, x: np.ndarray) -> float:
    with get_runner("onnxruntime").load(a, 1) as sa, get_runner("onnxruntime").load(b, 1) as sb:
        return float(np.mean([sa.run({"input": x[i : i + 1]})[0].argmax() == sb.run({"input": x[i : i + 1]})[0].argmax()
                              for i in range(len(x))]))


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_static_int8(method: str, digits, tmp_path: Path) -> None:
    import onnx

    model, data = digits
    context = LoweringContext(calibration=CalibrationData(data.x[:100], "digits"), options={"calib_method": method})
    artifact = get_lowering("ort-int8-static").apply(model, load_target("host-cpu"), tmp_path, context)
    ops = {n.op_type for n in onnx.load(str(artifact.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weight_scales = [i for i in onnx.load(str(artifact.path)).graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1]
    assert weight_scales, "per-channel weights carry one scale per output channel"
    assert artifact.details["calibration_method"] == method
    assert _agreement(model.onnx_path, artifact.path, data.x[1500:1650]) > 0.95


def test_dynamic_int8(digits, tmp_path: Path) -> None:
    model, data = digits
    artifact = get_lowering("ort-int8-dynamic").apply(model, load_target("host-cpu"), tmp_path, LoweringContext())
    assert _agreement(model.onnx_path, artifact.path, data.x[1500:1650]) > 0.95


def test_static_int8_errors(digits, tmp_path: Path) -> None:
    model, data = digits
    with pytest.raises(ConfigError, match="--calib"):
        get_lowering("ort-int8-static").apply(model, load_target("host-cpu"), tmp_path, LoweringContext())
    bad_method = LoweringContext(calibration=CalibrationData(data.x[:10], "digits"), options={"calib_method": "vibes"})
    with pytest.raises(ConfigError, match="calibration method"):
        get_lowering("ort-int8-static").apply(model, load_target("host-cpu"), tmp_path, bad_method)


def test_static_int8_leaves_the_root_logger_as_it_was(tiny_onnx: Path, tmp_path: Path) -> None:
    import logging

    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    model = load_model(tiny_onnx, workdir=tmp_path / "model")
    samples = np.random.default_rng(0).standard_normal((8, 1, 8, 8)).astype(np.float32)
    context = LoweringContext(calibration=CalibrationData(samples, "random", is_random=True))
    get_lowering("ort-int8-static").apply(model, load_target("host-cpu"), tmp_path, context)
    assert (root.level, root.handlers) == before  # the quantizer is quieted for its own call only
