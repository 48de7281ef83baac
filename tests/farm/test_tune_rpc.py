"""TVM MetaSchedule tuning over the RPC farm: candidates measured on a loopback board, records reused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tvm")
pytest.importorskip("tornado")
pytest.importorskip("xgboost")

from edgetune.errors import ConfigError, RemoteError  # noqa: E402
from edgetune.lowering import LoweringContext, Transport, get_lowering  # noqa: E402
from edgetune.lowering._tvm_remote import measure_on  # noqa: E402
from edgetune.models import load_model  # noqa: E402
from edgetune.runners import get_runner  # noqa: E402
from edgetune.targets import load_target  # noqa: E402
from tests.farm._farm import KEY, Farm, free_port  # noqa: E402

pytestmark = pytest.mark.rpc
TRIALS = 4


def _tune(farm: Farm, tiny_onnx: Path, folder: Path, records: Path, trials: int = TRIALS):
    model = load_model(tiny_onnx, workdir=folder)
    target = load_target(KEY, farm.targets_dir)
    context = LoweringContext(options={"tune_trials": trials, "tuning_records": str(records)},
                              transport=Transport(str(farm.tracker)))
    return model, get_lowering("tvm-tuned").apply(model, target, folder, context)


def test_tuning_measures_on_a_board_and_the_artifact_matches_onnxruntime(farm: Farm, tiny_onnx: Path,
                                                                          tmp_path: Path) -> None:
    model, artifact = _tune(farm, tiny_onnx, tmp_path / "a", tmp_path / "records")
    details = artifact.details
    assert details["measured_on"].startswith(f"boards of key '{KEY}'")
    assert details["trials_measured"] > 0 and details["tasks_tuned"] > 0
    assert (tmp_path / "records" / "database_tuning_record.json").stat().st_size > 0
    x = {"input": np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)}
    import onnxruntime as ort

    expected = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"]).run(None, x)[0]
    with get_runner("tvm").load(artifact.path, 1) as session:
        np.testing.assert_allclose(session.run(x)[0], expected, rtol=1e-4, atol=1e-5)
    # the records folder is exported and imported: a second tune of the same model finds every task there
    _, again = _tune(farm, tiny_onnx, tmp_path / "b", tmp_path / "records")
    assert again.details["tasks_reused"] == details["tasks_tuned"] + details["tasks_reused"]
    assert again.details["trials_measured"] == 0


def test_a_key_without_boards_fails_before_tuning(farm: Farm) -> None:
    target = load_target(KEY, farm.targets_dir).model_copy(update={"rpc_key": "no-such-board"})
    with pytest.raises(RemoteError, match="no-such-board"):
        measure_on(target, str(farm.tracker))


def test_an_rpc_target_without_a_tracker_is_a_config_error(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGETUNE_RPC_TRACKER", raising=False)
    with pytest.raises(ConfigError, match="rpc-tracker"):
        measure_on(load_target(KEY, farm.targets_dir), None)


def test_an_unreachable_tracker_fails_fast(farm: Farm) -> None:
    with pytest.raises(RemoteError, match="cannot reach"):
        measure_on(load_target(KEY, farm.targets_dir), f"127.0.0.1:{free_port()}")
