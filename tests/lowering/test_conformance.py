"""One suite every Lowering passes: declared formats are honoured and the artifact loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.errors import ConfigError, UnsupportedOperatorError
from edgetune.lowering import LoweringContext, get_lowering, llvm_target, lowering_registry
from edgetune.models import load_model
from edgetune.runners import get_runner, runner_registry
from edgetune.targets import load_target

LOWERINGS = sorted(lowering_registry)


@pytest.fixture(scope="module")
def torch_model(tmp_path_factory: pytest.TempPathFactory):
    from tests.conftest import tiny_factory

    return load_model(tiny_factory(), input_shape=(1, 1, 8, 8), workdir=tmp_path_factory.mktemp("model"))


def conformance_context() -> LoweringContext:
    """Calibration and training data shaped for the tiny 1x1x8x8 model (real digits images)."""
    from edgetune.data import load_dataset
    from edgetune.lowering import CalibrationData

    digits = load_dataset("digits")
    small = type(digits)("digits-small", digits.x[:200], digits.y[:200] % 3)
    return LoweringContext(calibration=CalibrationData(digits.x[:32], "digits"), train=small, eval=small,
                           options={"train_epochs": 1, "tune_trials": 8})


@pytest.mark.parametrize("name", LOWERINGS)
def test_output_format_is_loadable_by_a_runner(name: str, torch_model, tmp_path: Path) -> None:
    import numpy as np

    lowering = get_lowering(name)
    assert lowering.availability().ok, lowering.availability().reason
    assert lowering.accepts(torch_model)
    artifact = lowering.apply(torch_model, load_target("host-cpu"), tmp_path, conformance_context())
    assert artifact.format == lowering.output_format
    assert artifact.path.is_file() and artifact.size_bytes > 0 and artifact.build_s >= 0
    assert artifact.path.is_relative_to(tmp_path)  # writes only where it is told
    x = np.zeros((1, 1, 8, 8), "float32")
    if artifact.format == "torch":  # a torch -> torch transformation: the module still runs
        import torch

        assert artifact.module(torch.from_numpy(x)).shape == (1, 3)
        return
    runner = next(r for r in runner_registry.values() if r.artifact_format == artifact.format)
    with get_runner(runner.name).load(artifact.path, threads=1) as session:
        assert session.run({"input": x})[0].shape == (1, 3)


def test_format_declarations_gate_inputs(tiny_onnx: Path, tmp_path: Path) -> None:
    onnx_only = load_model(tiny_onnx, workdir=tmp_path)
    assert get_lowering("onnx").accepts(onnx_only)
    assert get_lowering("tvm").accepts(onnx_only)
    assert get_lowering("tflite").accepts(onnx_only)  # through its PyTorch form (onnx2torch)
    assert not get_lowering("tflite-int8-qat").accepts(onnx_only)  # training needs the PyTorch model itself


def test_unknown_lowering_lists_names() -> None:
    with pytest.raises(ConfigError, match="tvm"):
        get_lowering("nope")


def test_tvm_rejects_unsupported_operator(unsupported_op_onnx: Path, tmp_path: Path) -> None:
    model = load_model(unsupported_op_onnx, workdir=tmp_path)
    with pytest.raises(UnsupportedOperatorError, match="Celu"):
        get_lowering("tvm").apply(model, load_target("host-cpu"), tmp_path, LoweringContext())


def test_llvm_target_uses_board_cpu_and_triple() -> None:
    rpi = llvm_target(load_target("rpi4"))
    assert rpi.attrs["mcpu"] == "cortex-a72" and rpi.attrs["mtriple"] == "aarch64-linux-gnu"
    host = llvm_target(load_target("host-cpu"))
    assert host.attrs["mcpu"] not in ("", "auto", "generic")
