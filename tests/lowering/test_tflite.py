"""TFLite lowerings: full-integer int8 through PT2E and fp16 weights keep the network's predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.data import load_dataset
from edgetune.errors import ConfigError, DatasetError
from edgetune.lowering import CalibrationData, LoweringContext, get_lowering
from edgetune.models import export_zoo_model, load_model
from edgetune.runners import get_runner
from edgetune.targets import load_target


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("digits")
    export_zoo_model("digits-cnn", folder / "d.pt2", train_epochs=10)
    return load_model(folder / "d.pt2", workdir=folder), load_dataset("digits")


def _predictions(runtime: str, path: Path, x: np.ndarray) -> np.ndarray:
    with get_runner(runtime).load(path, threads=1) as session:
        return np.array([session.run({"input": x[i : i + 1]})[0].argmax() for i in range(len(x))])


def test_int8_is_full_integer_and_agrees_with_fp32(digits, tmp_path: Path) -> None:
    model, data = digits
    context = LoweringContext(calibration=CalibrationData(data.x[:200], "digits"))
    artifact = get_lowering("tflite-int8").apply(model, load_target("host-cpu"), tmp_path, context)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(artifact.path))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8  # what an NPU or MCU is fed
    held_out = data.x[1500:1700]
    fp32 = _predictions("onnxruntime", model.onnx_path, held_out)
    int8 = _predictions("litert", artifact.path, held_out)  # the runner quantizes inputs, dequantizes outputs
    assert np.mean(int8 == fp32) > 0.95
    assert artifact.details["calibration_samples"] == 128 and artifact.details["calibration_source"] == "digits"


def test_fp16_halves_the_file(digits, tmp_path: Path) -> None:
    model, data = digits
    target = load_target("host-cpu")
    (tmp_path / "a").mkdir()
    fp32 = get_lowering("tflite").apply(model, target, tmp_path / "a", LoweringContext())
    fp16 = get_lowering("tflite-fp16").apply(model, target, tmp_path, LoweringContext())
    assert fp16.size_bytes < 0.75 * fp32.size_bytes
    held_out = data.x[1500:1600]
    assert np.mean(_predictions("litert", fp16.path, held_out) == _predictions("litert", fp32.path, held_out)) > 0.97


def test_int8_needs_matching_calibration(digits, tmp_path: Path) -> None:
    model, data = digits
    with pytest.raises(ConfigError, match="--calib"):
        get_lowering("tflite-int8").apply(model, load_target("host-cpu"), tmp_path, LoweringContext())
    wrong = LoweringContext(calibration=CalibrationData(np.zeros((4, 3, 8, 8), np.float32), "wrong"))
    with pytest.raises(DatasetError, match="samples must be 1x8x8"):
        get_lowering("tflite-int8").apply(model, load_target("host-cpu"), tmp_path, wrong)


def test_quantization_aware_training_keeps_accuracy(tmp_path: Path) -> None:
    import torch

    from edgetune.models._train import train_classifier
    from edgetune.models.zoo import digits_cnn

    torch.manual_seed(0)
    data = load_dataset("digits")
    train, held_out = data.split(0.2, seed=0)
    module = digits_cnn()
    train_classifier(module, train, seconds=600, epochs=10)
    model = load_model(module, input_shape=(1, 1, 8, 8), workdir=tmp_path)
    context = LoweringContext(train=train, options={"train_epochs": 2})
    artifact = get_lowering("tflite-int8-qat").apply(model, load_target("host-cpu"), tmp_path, context)
    fp32 = _predictions("onnxruntime", model.onnx_path, held_out.x[:200])
    qat = _predictions("litert", artifact.path, held_out.x[:200])
    assert np.mean(qat == held_out.y[:200]) >= np.mean(fp32 == held_out.y[:200]) - 0.03
    assert artifact.details["fine_tune"]["epochs"] == 2
    with pytest.raises(ConfigError, match="--train"):
        get_lowering("tflite-int8-qat").apply(model, load_target("host-cpu"), tmp_path, LoweringContext())
