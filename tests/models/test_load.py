from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import InputShapeError, ModelError
from edgetune.models import load_model, parse_shape, parse_shape_option, summarize


def test_onnx_file(tiny_onnx: Path, tmp_path: Path) -> None:
    model = load_model(tiny_onnx, workdir=tmp_path)
    assert model.source_format == "onnx" and model.formats == ("onnx",)
    assert model.inputs[0].shape == (1, 1, 8, 8) and model.inputs[0].dtype == "float32"
    assert model.outputs[0].shape == (1, 3)
    assert len(model.sha256) == 64


def test_dynamic_onnx_needs_and_takes_a_shape(dynamic_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(InputShapeError, match="dynamic"):
        load_model(dynamic_onnx, workdir=tmp_path)
    model = load_model(dynamic_onnx, input_shape=(2, 1, 8, 8), workdir=tmp_path)
    assert model.inputs[0].shape == (2, 1, 8, 8)
    assert model.outputs[0].shape == (2, 3)
    assert model.onnx_path != dynamic_onnx  # a static copy was written


@pytest.mark.parametrize(
    ("shape", "match"),
    [((1, 1, 8), "rank 4"), ((1, 2, 8, 8), "does not match"), ((1, 0, 8, 8), "non-positive")],
)
def test_bad_input_shape(tiny_onnx: Path, tmp_path: Path, shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(InputShapeError, match=match):
        load_model(tiny_onnx, input_shape=shape, workdir=tmp_path)


def test_named_shape_for_unknown_input(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(InputShapeError, match="unknown input"):
        load_model(tiny_onnx, input_shape={"nope": (1, 1, 8, 8)}, workdir=tmp_path)


def test_shape_parsing() -> None:
    assert parse_shape("1x3x224x224") == (1, 3, 224, 224)
    assert parse_shape("1,3,8,8") == (1, 3, 8, 8)
    assert parse_shape_option(["input:1x1x8x8"]) == {"input": (1, 1, 8, 8)}
    assert parse_shape_option([]) is None
    for bad in ("1xAx3", "", "1x-1"):
        with pytest.raises(InputShapeError):
            parse_shape(bad)
    with pytest.raises(InputShapeError, match="too|over the limit"):
        parse_shape("100000x100000x100")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing.onnx")


@pytest.mark.parametrize("suffix", [".onnx", ".bin"])
def test_corrupt_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"corrupt{suffix}"
    path.write_bytes(b"this is not a model at all" * 10)
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_model(path, workdir=tmp_path)


def test_truncated_onnx(tiny_onnx: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.onnx"
    path.write_bytes(tiny_onnx.read_bytes()[:200])
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_model(path, workdir=tmp_path)


def test_corrupt_tflite(tmp_path: Path) -> None:
    path = tmp_path / "x.tflite"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match="TFL3"):
        load_model(path)


def test_factory_needs_shape_and_loads(tmp_path: Path) -> None:
    with pytest.raises(InputShapeError, match="--input-shape"):
        load_model("tests.conftest:tiny_factory", workdir=tmp_path)
    model = load_model("tests.conftest:tiny_factory", input_shape=(1, 1, 8, 8), workdir=tmp_path)
    assert model.source_format == "torch" and set(model.formats) == {"torch", "onnx"}
    assert model.outputs[0].shape == (1, 3)


def test_bad_factory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot import factory"):
        load_model("tests.nonexistent_module:make", input_shape=(1, 1, 8, 8), workdir=tmp_path)
    with pytest.raises(ModelError, match="not a torch.nn.Module"):
        load_model("os.path:sep", input_shape=(1,), workdir=tmp_path) if False else load_model(
            "builtins:dict", input_shape=(1,), workdir=tmp_path
        )


def test_exported_program_keeps_its_shape(tiny_pt2: Path, tmp_path: Path) -> None:
    model = load_model(tiny_pt2, workdir=tmp_path)
    assert model.inputs[0].shape == (1, 1, 8, 8) and model.torch_module is not None
    with pytest.raises(InputShapeError, match="exported for input"):
        load_model(tiny_pt2, input_shape=(2, 1, 8, 8), workdir=tmp_path)


def test_torchscript_and_state_dict(tiny_module, tmp_path: Path) -> None:
    import torch

    scripted = tmp_path / "tiny.pt"
    torch.jit.trace(tiny_module, torch.zeros(1, 1, 8, 8)).save(str(scripted))
    model = load_model(scripted, input_shape=(1, 1, 8, 8), workdir=tmp_path)
    assert model.inputs[0].shape == (1, 1, 8, 8)
    weights = tmp_path / "weights.pt"
    torch.save(tiny_module.state_dict(), weights)
    with pytest.raises(ModelError, match="state_dict holds weights only"):
        load_model(weights, input_shape=(1, 1, 8, 8), workdir=tmp_path)


def test_onnx_export_matches_torch(tiny_module, tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    model = load_model(tiny_module, input_shape=(1, 1, 8, 8), workdir=tmp_path)
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    got = ort.InferenceSession(str(model.onnx_path)).run(None, {model.inputs[0].name: x})[0]
    np.testing.assert_allclose(got, tiny_module(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_summary_counts_macs_and_params(tmp_path: Path) -> None:
    model = load_model("edgetune.models.zoo:mobilenet_v2_like", input_shape=(1, 3, 224, 224), workdir=tmp_path)
    summary = summarize(model)
    # MobileNetV2 1.0 @224 (Sandler et al. 2018): 3.4M parameters, 300M multiply-adds
    assert 3.3e6 < summary.params < 3.6e6
    assert 2.9e8 < summary.macs < 3.1e8
    assert summary.op_counts["Conv"] == 52
    assert summary.to_dict()["inputs"][0]["shape"] == [1, 3, 224, 224]


def test_a_failing_export_is_one_line_and_leaves_the_exporter_logger_as_it_was(tmp_path: Path) -> None:
    import logging

    import torch

    class Untraceable(torch.nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            raise ValueError("this module cannot be traced\nsecond line")

    exporter = logging.getLogger("torch.onnx")
    before = exporter.level
    with pytest.raises(ModelError, match="cannot export") as raised:
        load_model(Untraceable(), input_shape=(1, 3), workdir=tmp_path)
    assert "\n" not in str(raised.value)
    assert exporter.level == before  # quieted for the export only
