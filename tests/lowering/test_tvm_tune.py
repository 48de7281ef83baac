"""tvm-tuned: tuned artifacts compute what ONNX Runtime computes; records are stored per target and reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgetune.errors import ConfigError
from edgetune.lowering import LoweringContext, get_lowering
from edgetune.models import LoadedModel, load_model
from edgetune.runners import get_runner
from edgetune.targets import load_target

pytest.importorskip("tvm")
pytest.importorskip("xgboost")

TRIALS = 8


def _cnn(extra_conv: bool) -> Any:
    """Conv-ReLU-Conv-GlobalAvgPool-Gemm on 1x1x8x8; ``extra_conv`` adds one Conv-ReLU (one new workload)."""
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    middle = [nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()] if extra_conv else []
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), *middle, nn.Conv2d(4, 4, 3, padding=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).eval()
    return module


def _load(extra_conv: bool, workdir: Path) -> LoadedModel:
    return load_model(_cnn(extra_conv), input_shape=(1, 1, 8, 8), workdir=workdir)


def _assert_matches_onnxruntime(model: LoadedModel, artifact_path: Path) -> None:
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    feeds = {model.inputs[0].name: x}
    expected = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with get_runner("tvm").load(artifact_path, threads=1) as session:
        got = session.run(feeds)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def _context(profiles: Path | None, trials: int = TRIALS) -> LoweringContext:
    return LoweringContext(options={"tune_trials": trials}, profiles_dir=profiles)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("profiles")


@pytest.fixture(scope="module")
def first_build(profiles: Path, tmp_path_factory: pytest.TempPathFactory):
    """The small CNN tuned once into an empty records folder (shared by the tests below: tuning is slow)."""
    workdir = tmp_path_factory.mktemp("first")
    model = _load(False, workdir)
    artifact = get_lowering("tvm-tuned").apply(model, load_target("host-cpu"), workdir, _context(profiles))
    return model, artifact


def test_tuned_artifact_matches_onnxruntime(first_build) -> None:
    model, artifact = first_build
    assert artifact.format == "tvm-lib" and artifact.path.is_file()
    _assert_matches_onnxruntime(model, artifact.path)


def test_first_build_tunes_every_task_and_writes_records(first_build, profiles: Path) -> None:
    _, artifact = first_build
    details = artifact.details
    assert details["tune_trials"] == TRIALS
    assert details["tasks_total"] >= 3  # two convolutions, the pooling, the Gemm, ...
    assert details["tasks_tuned"] == details["tasks_total"] and details["tasks_reused"] == 0
    assert details["tasks_without_record"] == 0  # the budget reaches every task
    assert 0 < details["trials_measured"] <= TRIALS
    records = Path(details["records_dir"])
    assert records.parent == profiles / "tvm" and details["records_shared"] is True
    assert (records / "database_workload.json").stat().st_size > 0
    assert (records / "database_tuning_record.json").stat().st_size > 0


def test_second_build_reuses_every_record(first_build, profiles: Path, tmp_path: Path) -> None:
    model = _load(False, tmp_path)
    artifact = get_lowering("tvm-tuned").apply(model, load_target("host-cpu"), tmp_path, _context(profiles))
    details = artifact.details
    assert details["tasks_tuned"] == 0 and details["trials_measured"] == 0
    assert details["tasks_reused"] == details["tasks_total"] == first_build[1].details["tasks_total"]
    assert details["records_dir"] == first_build[1].details["records_dir"]
    _assert_matches_onnxruntime(model, artifact.path)


def test_new_workload_tunes_only_the_new_task(first_build, profiles: Path, tmp_path: Path) -> None:
    model = _load(True, tmp_path)  # one more Conv(4->4)+ReLU: its workload is the only new one
    context = _context(profiles, trials=2)  # one task to tune: 2 trials are plenty
    artifact = get_lowering("tvm-tuned").apply(model, load_target("host-cpu"), tmp_path, context)
    details = artifact.details
    assert details["tasks_total"] == first_build[1].details["tasks_total"] + 1
    assert details["tasks_tuned"] == 1 and details["tasks_reused"] == details["tasks_total"] - 1
    assert details["tasks_without_record"] == 0
    _assert_matches_onnxruntime(model, artifact.path)


def test_without_profiles_dir_records_stay_in_the_workdir(tmp_path: Path) -> None:
    model = _load(False, tmp_path / "model")
    # 0 trials: nothing is measured, the build uses TVM's default schedules (fast)
    artifact = get_lowering("tvm-tuned").apply(model, load_target("host-cpu"), tmp_path, _context(None, trials=0))
    details = artifact.details
    assert Path(details["records_dir"]).is_relative_to(tmp_path) and details["records_shared"] is False
    assert "profiles_dir" in details["records_note"]
    assert details["tasks_tuned"] == 0 and details["tasks_without_record"] == details["tasks_total"]
    _assert_matches_onnxruntime(model, artifact.path)


@pytest.mark.parametrize("trials", [-1, 2.5, "8", True])
def test_bad_trial_budget_is_rejected(trials: object, tmp_path: Path) -> None:
    model = _load(False, tmp_path)
    context = LoweringContext(options={"tune_trials": trials})
    with pytest.raises(ConfigError, match="tune_trials"):
        get_lowering("tvm-tuned").apply(model, load_target("host-cpu"), tmp_path, context)


def test_remote_target_is_rejected(tmp_path: Path) -> None:
    model = _load(False, tmp_path)
    with pytest.raises(ConfigError, match="rpi4"):
        get_lowering("tvm-tuned").apply(model, load_target("rpi4"), tmp_path, _context(tmp_path / "profiles"))
