"""Shared fixtures: tiny models built in code, an isolated results store, quiet logs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")


@pytest.fixture(autouse=True)
def isolated_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes measurements to its own SQLite file, never to ~/.local/share."""
    path = tmp_path / "results.sqlite"
    monkeypatch.setenv("EDGETUNE_RESULTS", str(path))
    monkeypatch.delenv("EDGETUNE_TARGETS_DIR", raising=False)
    monkeypatch.setenv("EDGETUNE_PROFILES", str(tmp_path / "profiles"))  # tuning records etc.
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))  # simulation results
    return path


def _tiny_module():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3),
    ).eval()


@pytest.fixture
def tiny_module():
    """A 1x1x8x8 -> 1x3 CNN (nn.Module)."""
    return _tiny_module()


def tiny_factory():
    """Factory used as 'tests.conftest:tiny_factory' in tests of pkg.module:factory loading."""
    return _tiny_module()


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN as a static-shape ONNX file (legacy exporter: fast, self-contained)."""
    import torch

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    torch.onnx.export(_tiny_module(), (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                      input_names=["input"], output_names=["output"])
    return path


@pytest.fixture(scope="session")
def dynamic_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN with a dynamic batch dimension."""
    import torch

    path = tmp_path_factory.mktemp("onnx") / "dynamic.onnx"
    torch.onnx.export(_tiny_module(), (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                      input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "batch"}})
    return path


@pytest.fixture(scope="session")
def unsupported_op_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Conv -> Celu: ONNX Runtime runs it; TVM 0.27's ONNX frontend has no Celu converter."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Celu", ["c"], ["y"], alpha=1.0)],
        "celu_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "celu.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN saved as an ExportedProgram."""
    import torch

    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    torch.export.save(torch.export.export(_tiny_module(), (torch.zeros(1, 1, 8, 8),)), str(path))
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on loopback for this test session (tests are marked `postgres`)."""
    from tests._postgres import postgres_server, why_unavailable

    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    yield from postgres_server()


@pytest.fixture(scope="session")
def fake_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained latency profile of a fake fast runtime ("fake") for host-cpu: <root>/host-cpu/fake/."""
    from tests.predict._fake import build_fake_profile

    result = build_fake_profile(tmp_path_factory.mktemp("profiles"))
    assert not result.interrupted and result.kernels > 100
    return result.folder
