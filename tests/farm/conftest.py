"""Fixtures of the rpc tests: loopback boards and the tiny CNN built for each runtime they run."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.farm._farm import Farm, loopback_farm


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """A tracker and two `edgetune farm serve` boards under one key, shared by a module's tests."""
    pytest.importorskip("tvm")
    pytest.importorskip("tornado")
    with loopback_farm(tmp_path_factory.mktemp("farm")) as running:
        yield running


@pytest.fixture(scope="session")
def host_artifact(tmp_path_factory: pytest.TempPathFactory, tiny_onnx: Path) -> Path:
    """The tiny CNN built by the tvm lowering for this machine's CPU (what the loopback boards run)."""
    pytest.importorskip("tvm")
    from edgetune.lowering import LoweringContext
    from edgetune.lowering._tvm import TvmLowering
    from edgetune.models import load_model
    from edgetune.targets import load_target

    folder = tmp_path_factory.mktemp("artifact")
    model = load_model(tiny_onnx, workdir=folder)
    return TvmLowering().apply(model, load_target("host-cpu"), folder, LoweringContext()).path


@pytest.fixture(scope="session")
def litert_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN converted to an fp32 .tflite by the tflite lowering."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    from edgetune.lowering import LoweringContext
    from edgetune.lowering._tflite import TfliteLowering
    from edgetune.models import load_model
    from edgetune.targets import load_target
    from tests.conftest import tiny_factory

    folder = tmp_path_factory.mktemp("tflite")
    model = load_model(tiny_factory(), input_shape=(1, 1, 8, 8), workdir=folder)
    return TfliteLowering().apply(model, load_target("host-cpu"), folder, LoweringContext()).path
