"""OpenVINO IR lowerings: fp32 conversion and NNCF int8 post-training quantization."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edgetune.data import Dataset, load_dataset
from edgetune.errors import ConfigError, UnsupportedOperatorError
from edgetune.lowering import Artifact, CalibrationData, LoweringContext, get_lowering
from edgetune.models import LoadedModel, load_model
from edgetune.runners import get_runner
from edgetune.targets import load_target


@pytest.fixture(scope="module")
def digits() -> Dataset:
    data = load_dataset("digits")
    return Dataset("digits-small", data.x[:64], data.y[:64] % 3)  # 3 classes, like the tiny CNN


@pytest.fixture(scope="module")
def model(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_model(tiny_onnx, workdir=tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def fp32(model: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    workdir = tmp_path_factory.mktemp("fp32")
    return get_lowering("openvino").apply(model, load_target("host-cpu"), workdir, LoweringContext())


@pytest.fixture(scope="module")
def int8(model: LoadedModel, digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    context = LoweringContext(calibration=CalibrationData(digits.x[:40], "digits"))
    workdir = tmp_path_factory.mktemp("int8")
    return get_lowering("openvino-nncf-int8").apply(model, load_target("host-cpu"), workdir, context)


def _op_types(path: Path) -> Counter[str]:
    import openvino as ov

    return Counter(op.get_type_name() for op in ov.Core().read_model(str(path)).get_ops())


def _constant_types(path: Path) -> set[str]:
    import openvino as ov

    ops = ov.Core().read_model(str(path)).get_ops()
    return {op.get_output_element_type(0).get_type_name() for op in ops if op.get_type_name() == "Constant"}


def _outputs(artifact: Artifact, x: np.ndarray) -> np.ndarray:
    with get_runner("openvino").load(artifact.path, threads=1) as session:
        return np.concatenate([session.run({"input": x[i : i + 1]})[0] for i in range(len(x))])


def test_fp32_ir_keeps_fp32_weights_and_matches_onnx(fp32: Artifact, model: LoadedModel, digits: Dataset) -> None:
    import onnxruntime as ort

    assert fp32.path.with_suffix(".bin").is_file() and fp32.size_bytes > fp32.path.stat().st_size
    assert "f16" not in _constant_types(fp32.path) and "FakeQuantize" not in _op_types(fp32.path)
    reference = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"])
    expected = np.concatenate([reference.run(None, {"input": digits.x[i : i + 1]})[0] for i in range(8)])
    np.testing.assert_allclose(_outputs(fp32, digits.x[:8]), expected, rtol=1e-4, atol=1e-5)


def test_int8_ir_is_really_quantized(int8: Artifact) -> None:
    ops = _op_types(int8.path)
    assert ops["FakeQuantize"] >= 2 and int8.details["fake_quantize_ops"] == ops["FakeQuantize"]
    assert _constant_types(int8.path) & {"i8", "u8"}  # weights stored as int8, not fp32 + FakeQuantize
    with get_runner("openvino").load(int8.path, threads=1) as session:
        runtime = session.compiled_model.get_runtime_model()  # type: ignore[attr-defined]
        precisions = {op.get_rt_info()["runtimePrecision"].astype(str) for op in runtime.get_ops()
                      if op.get_rt_info()["layerType"].astype(str) == "Convolution"}
    assert precisions <= {"u8", "i8"}, precisions  # the CPU plugin runs the convolution in int8


def test_int8_records_how_it_was_built(int8: Artifact) -> None:
    assert int8.format == "openvino" and int8.path.name.endswith(".int8.xml")
    assert {k: int8.details[k] for k in ("precision", "preset", "subset_size", "accuracy_aware")} == {
        "precision": "int8", "preset": "performance", "subset_size": 40, "accuracy_aware": False,
    }
    assert int8.details["calibration_source"] == "digits" and int8.details["calibration_random"] is False


def test_int8_outputs_stay_close_to_fp32(fp32: Artifact, int8: Artifact, digits: Dataset) -> None:
    x = digits.x[40:56]  # not seen during calibration
    reference = _outputs(fp32, x)
    np.testing.assert_allclose(_outputs(int8, x), reference, atol=0.05 * np.abs(reference).max() + 1e-3)


def test_int8_without_calibration_is_a_config_error(model: LoadedModel, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="openvino-nncf-int8 needs calibration data"):
        get_lowering("openvino-nncf-int8").apply(model, load_target("host-cpu"), tmp_path, LoweringContext())


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (LoweringContext(calibration=CalibrationData(np.zeros((4, 8, 8), "float32"), "flat")), r"shaped \(8, 8\)"),
        (LoweringContext(calibration=CalibrationData(np.zeros((4, 1, 8, 8), "float32"), "z"),
                         options={"nncf_preset": "fastest"}), "nncf_preset"),
        (LoweringContext(calibration=CalibrationData(np.zeros((4, 1, 8, 8), "float32"), "z"),
                         options={"accuracy_aware": True}), "labelled evaluation data"),
    ],
    ids=["calibration-shape", "preset", "accuracy-aware-without-eval"],
)
def test_int8_rejects_bad_inputs(model: LoadedModel, tmp_path: Path, context: LoweringContext, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_lowering("openvino-nncf-int8").apply(model, load_target("host-cpu"), tmp_path, context)


def test_accuracy_aware_int8_records_random_calibration(model: LoadedModel, digits: Dataset, tmp_path: Path) -> None:
    noise = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    context = LoweringContext(calibration=CalibrationData(noise, "random", is_random=True), eval=digits,
                              options={"accuracy_aware": True, "max_accuracy_drop": 50.0, "nncf_preset": "mixed"})
    artifact = get_lowering("openvino-nncf-int8").apply(model, load_target("host-cpu"), tmp_path, context)
    assert artifact.details["accuracy_aware"] is True and artifact.details["calibration_random"] is True
    assert artifact.details["preset"] == "mixed" and artifact.details["validation_samples"] == len(digits.x)
    assert _op_types(artifact.path)["FakeQuantize"] >= 1


def test_unconvertible_operator_is_reported(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")], "custom_op_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    proto.ir_version = 8
    onnx.save(proto, str(tmp_path / "custom.onnx"))
    custom = load_model(tmp_path / "custom.onnx", workdir=tmp_path)
    with pytest.raises(UnsupportedOperatorError, match="Frobnicate"):
        get_lowering("openvino").apply(custom, load_target("host-cpu"), tmp_path, LoweringContext())
