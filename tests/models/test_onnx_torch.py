"""ONNX models reach the PyTorch-based lowerings (LiteRT, Vela, TFLite Micro, pruning) through onnx2torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.bench import BenchConfig
from edgetune.errors import UnsupportedOperatorError
from edgetune.lowering import CalibrationData, LoweringContext, get_lowering
from edgetune.lowering._torch_form import with_torch_form
from edgetune.models import load_model
from edgetune.pipeline import CompileOptions, benchmark
from edgetune.targets import load_target

QUICK = BenchConfig(budget_s=0.2, min_repeats=5, warmup_runs=2, warmup_s=0.0)


def _skip_without_onnx2torch() -> None:
    from edgetune.errors import MissingDependencyError
    from edgetune.models._onnx_torch import import_onnx2torch

    try:
        import_onnx2torch()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def opset20_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN as torch.onnx (dynamo) writes it today: opset 20, ReduceMean-18, Reshape with allowzero."""
    import torch

    _skip_without_onnx2torch()
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU6(), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
        torch.nn.Hardswish(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10),
    ).eval()
    path = tmp_path_factory.mktemp("onnx") / "net20.onnx"
    torch.onnx.export(net, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=True, external_data=False,
                      input_names=["input"], output_names=["output"], verbose=False)
    return path


@pytest.fixture(scope="module")
def hardmax_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Conv -> Hardmax: ONNX Runtime runs it; onnx2torch has no Hardmax converter."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Hardmax", ["c"], ["y"])],
        "hardmax_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])], [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "hardmax.onnx"
    onnx.save(model, str(path))
    return path


def _calibrated() -> LoweringContext:
    from edgetune.data import load_dataset

    return LoweringContext(calibration=CalibrationData(load_dataset("digits").x[:32], "digits"))


def test_an_opset20_model_converts_and_matches_onnxruntime(opset20_onnx: Path, tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    model = with_torch_form(load_model(opset20_onnx, workdir=tmp_path))
    assert model.source_format == "onnx" and isinstance(model.torch_module, torch.nn.Module)
    x = np.random.default_rng(1).standard_normal((1, 1, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(str(opset20_onnx)).run(None, {"input": x})[0]
    with torch.no_grad():
        got = model.torch_module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_litert_candidates_of_an_onnx_model_are_built_and_match_the_reference(opset20_onnx: Path) -> None:
    evaluation = benchmark(opset20_onnx, "host-cpu", runtimes=["litert"], precisions=["fp32", "int8"], config=QUICK,
                           options=CompileOptions(calib="digits", calib_samples=16))
    by_name = {r.name: r for r in evaluation.results}
    assert by_name["litert-fp32"].status == "ok", by_name["litert-fp32"].reason
    assert by_name["litert-fp32"].fidelity.passed  # checked against ONNX Runtime fp32 on the input model
    assert evaluation.reference.startswith("onnxruntime-fp32")
    assert by_name["litert-int8"].status in ("ok", "rejected"), by_name["litert-int8"].reason


@pytest.mark.parametrize("target", ["ethos-u55-128", "mcu-stm32f746"])
def test_an_onnx_model_reaches_the_npu_and_the_mcu(opset20_onnx: Path, target: str) -> None:
    evaluation = benchmark(opset20_onnx, target, config=QUICK, options=CompileOptions(calib="digits", calib_samples=16))
    [result] = evaluation.results
    assert result.status in ("ok", "rejected"), result.reason
    assert result.details["simulated"] is True
    assert "int8 .tflite from the tflite-int8 lowering" in result.details["input"]


def test_a_conversion_that_fails_names_the_operator(hardmax_onnx: Path, tmp_path: Path) -> None:
    _skip_without_onnx2torch()
    with pytest.raises(UnsupportedOperatorError, match=r"cannot convert operator\(s\) Hardmax-13 of 'hardmax'"):
        with_torch_form(load_model(hardmax_onnx, workdir=tmp_path))
    evaluation = benchmark(hardmax_onnx, "host-cpu", runtimes=["litert"], config=QUICK)
    [result] = evaluation.results
    assert result.status == "failed" and "Hardmax" in result.reason


def test_pruning_works_on_an_onnx_model(opset20_onnx: Path, tmp_path: Path) -> None:
    model = load_model(opset20_onnx, workdir=tmp_path / "m")
    context = LoweringContext(options={"prune_ratio": 0.5, "train_epochs": 0})
    artifact = get_lowering("prune").apply(model, load_target("host-cpu"), tmp_path, context)
    assert artifact.details["params_after"] < artifact.details["params_before"]
    assert artifact.format == "torch"


def test_an_onnx_model_passes_the_prune_search_check(opset20_onnx: Path, tmp_path: Path) -> None:
    from edgetune.pipeline._prune_search import check_prunable

    check_prunable(with_torch_form(load_model(opset20_onnx, workdir=tmp_path)))


def test_the_int8_tflm_lowering_takes_an_onnx_model(opset20_onnx: Path, tmp_path: Path) -> None:
    model = load_model(opset20_onnx, workdir=tmp_path / "m")
    artifact = get_lowering("tflm").apply(model, load_target("mcu-stm32f746"), tmp_path, _calibrated())
    assert artifact.details["arena_bytes"] > 0 and artifact.details["fits"] is True


def test_a_pruned_onnx_model_is_fine_tuned_on_batches(opset20_onnx: Path, tmp_path: Path) -> None:
    from edgetune.data import load_dataset

    model = load_model(opset20_onnx, workdir=tmp_path / "m")
    train = load_dataset("digits")
    context = LoweringContext(train=train, options={"prune_ratio": 0.5, "train_epochs": 1})
    artifact = get_lowering("prune").apply(model, load_target("host-cpu"), tmp_path, context)
    assert artifact.details["fine_tuned"] is True and artifact.details["params_after"] < artifact.details["params_before"]


def test_without_onnx2torch_the_error_says_how_to_install_it(tiny_onnx: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from edgetune.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "onnx2torch", None)  # what an environment without it sees
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps onnx2torch==1\.5\.15"):
        with_torch_form(load_model(tiny_onnx, workdir=tmp_path))


def _graph(opset: int, nodes: list, initializers: dict, out_shape: list[int]) -> "object":
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(nodes, f"opset{opset}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def test_newer_operator_versions_convert_and_export(tmp_path: Path) -> None:
    """Opset 22 (Conv/HardSwish/GlobalAveragePool-22, Flatten-21) and opset 19 (Pad-19 with constant pads,
    ReduceMean-18 with an axes input, Reshape-19): converted, equal to ONNX Runtime, and torch.export-able."""
    import onnx
    import torch
    from onnx import helper

    _skip_without_onnx2torch()
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((3, 4)).astype(np.float32)
    newest = _graph(22, [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                         helper.make_node("HardSwish", ["c"], ["h"]), helper.make_node("GlobalAveragePool", ["h"], ["g"]),
                         helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)],
                    {"w": w, "fc": fc}, [1, 3])
    padded = _graph(19, [helper.make_node("Pad", ["x", "pads"], ["p"]), helper.make_node("Conv", ["p", "w"], ["c"]),
                         helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=1),
                         helper.make_node("Reshape", ["m", "shape"], ["y"])],
                    {"w": w, "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "axes": np.array([2, 3], np.int64),
                     "shape": np.array([1, 4], np.int64)}, [1, 4])
    for proto in (newest, padded):
        path = tmp_path / f"{proto.graph.name}.onnx"
        onnx.save(proto, str(path))
        model = with_torch_form(load_model(path, workdir=tmp_path))  # checked against ONNX Runtime inside
        torch.export.export(model.torch_module, (torch.zeros(1, 2, 6, 6),))  # what the LiteRT conversion needs
