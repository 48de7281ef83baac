from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.bench import BenchConfig
from edgetune.errors import ConfigError
from edgetune.predict import (
    FlopsPredictor,
    GraphBuilder,
    GraphMeasurer,
    KernelPredictor,
    MeasuringPredictor,
    ProfileError,
    predict,
    predictor_for,
    reference_graph,
)
from edgetune.targets import load_target

QUICK = BenchConfig(warmup_runs=2, warmup_s=0.0, min_repeats=5, budget_s=0.2)


def _small():
    b = GraphBuilder("small", (1, 3, 16, 16))
    return b.build(b.fc(b.gap(b.relu(b.bn(b.conv("input", 8, 3, 1)))), 4))


def test_graph_measurer_times_real_onnxruntime_sessions() -> None:
    with GraphMeasurer(load_target("host-cpu"), "onnxruntime", 1, config=QUICK, reference=reference_graph()) as m:
        timings, interrupted = m.measure([_small(), _small()])
    assert not interrupted and len(timings) == 2
    for t in timings:
        assert 0 < t.min_ms <= t.p10_ms <= t.median_ms and t.reference_ms and t.latency_ms == t.min_ms


def test_without_profile_the_search_falls_back_to_measuring(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="measuring each network"):
        predictor = predictor_for("host-cpu", profiles_dir=tmp_path)
    assert isinstance(predictor, MeasuringPredictor)
    predictor.measurer.config = QUICK
    estimate = predictor.predict(_small())
    predictor.close()
    assert estimate.extra["measured"] and estimate.predictor == "measured" and estimate.total_ms > 0


def test_predict_without_profile_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="edgetune profile --target host-cpu"):
        predict(_small(), "host-cpu", profiles_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown predictor"):
        predictor_for("host-cpu", profiles_dir=tmp_path, kind="oracle")


def test_profiled_predictors(fake_profile: Path) -> None:
    root = fake_profile.parent.parent
    assert isinstance(predictor_for("host-cpu", "fake", root), KernelPredictor)
    flops = predictor_for("host-cpu", "fake", root, kind="flops")
    assert isinstance(flops, FlopsPredictor) and flops.predict(_small()).total_ms > 0


def test_a_batched_prediction_pauses_the_garbage_collector_and_restores_it(fake_profile: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    predictor = KernelPredictor(fake_profile)
    seen = []
    split = predictor._predict_many

    def recording(graphs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return split(graphs)

    monkeypatch.setattr(predictor, "_predict_many", recording)
    assert gc.isenabled() and predictor.predict_many([_small()])[0].total_ms > 0
    assert seen == [False] and gc.isenabled()  # off during the call, on again after
    gc.disable()
    try:
        predictor.predict_many([_small()])
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()
    monkeypatch.setattr(predictor, "_predict_many", lambda graphs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        predictor.predict_many([_small()])
    assert gc.isenabled()  # on again after a failed call


def test_corrupt_regressor_file_is_reported(fake_profile: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "host-cpu" / "fake"
    shutil.copytree(fake_profile, copy)
    (copy / "models" / "conv.lgb.txt").write_text("garbage")
    from edgetune.errors import ModelError

    with pytest.raises(ModelError, match="re-run `edgetune profile`"):
        KernelPredictor(copy)


def test_simulated_npu_kernels_are_timed_by_the_simulator() -> None:
    """A simulated target is profiled through its int8 build; ScaleSim's estimate is deterministic."""
    b = GraphBuilder("k", (1, 16, 14, 14))
    conv = b.build(b.relu(b.bn(b.conv("input", 32, 3, 1))))
    with GraphMeasurer(load_target("npu-edgetpu-like"), "scalesim", 1, config=QUICK) as m:
        first, _ = m.measure([conv])
        again, _ = m.measure([conv])
    assert first[0].latency_ms > 0 and first[0].latency_ms == again[0].latency_ms == first[0].median_ms


def test_same_named_graphs_of_other_shapes_are_rebuilt_for_tvm() -> None:
    """TVM loads a built library with dlopen, which returns a library already loaded from the same path."""
    def conv(channels: int):  # type: ignore[no-untyped-def]
        b = GraphBuilder("single-conv", (1, channels, 8, 8))
        return b.build(b.conv("input", channels, 1, 1))

    with GraphMeasurer(load_target("host-cpu"), "tvm", 1, config=QUICK, interleave=1) as m:
        first, _ = m.measure([conv(16)])
        second, _ = m.measure([conv(32)])
    assert not first[0].error and not second[0].error and second[0].latency_ms > 0


def _legacy_copy(fake_profile: Path, tmp_path: Path, drop: tuple[str, ...]) -> Path:
    """The fake profile without the regressors of ``drop`` (as a profile taken before they were profiled)."""
    import json
    import shutil

    copy = tmp_path / "host-cpu" / "fake"
    shutil.copytree(fake_profile, copy)
    meta_path = copy / "models" / "models.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k not in drop and k.removeprefix("ctx-") not in drop}))
    return copy


def test_every_newly_costed_kind_is_predicted_from_onnx(fake_profile: Path, tmp_path: Path) -> None:
    from edgetune.predict import to_onnx
    from tests.predict.test_graph import _real_network_ops

    path = to_onnx(_real_network_ops(), tmp_path / "zoo.onnx")
    estimate = KernelPredictor(fake_profile).predict(path)
    kinds = {k.kind.split("+")[0] for k in estimate.kernels}
    assert {"transpose", "slice", "pad", "scale", "mul", "hsigmoid", "softmax", "conv", "gap", "fc"} <= kinds
    assert not estimate.uncovered and not [k for k in estimate.kernels if k.estimated]  # all profiled
    assert all(k.latency_ms >= 0 for k in estimate.kernels) and estimate.extra["estimated_share"] == 0.0


def test_kinds_without_a_regressor_are_estimated_and_marked(fake_profile: Path, tmp_path: Path,
                                                           unsupported_op_onnx: Path) -> None:
    from tests.predict.test_graph import _real_network_ops

    predictor = KernelPredictor(_legacy_copy(fake_profile, tmp_path, ("transpose", "scale", "mul", "softmax", "relu", "bn", "add")))
    estimate = predictor.predict(_real_network_ops())
    estimated = {k.kind.split("+")[0]: k for k in estimate.kernels if k.estimated}
    assert {"transpose", "scale", "mul", "softmax"} <= set(estimated) and not estimate.uncovered
    assert "as a hswish" in estimated["softmax"].estimated or "as a sigmoid" in estimated["softmax"].estimated
    assert "bytes moved" in estimated["transpose"].estimated  # relu and bn gone too: no similar kind left
    assert all(k.latency_ms > 0 for k in estimated.values())
    assert 0 < estimate.extra["estimated_share"] < 1 and estimate.to_dict()["estimated_ms"] == pytest.approx(estimate.estimated_ms)
    celu = predictor.predict(unsupported_op_onnx)  # an operator no kind describes: estimated, never left out
    assert not celu.uncovered and [k.kind for k in celu.kernels if k.estimated] == ["other"]


def test_identity_is_never_listed(fake_profile: Path, tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Identity", ["x"], ["xi"]), helper.make_node("Conv", ["xi", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Identity", ["c"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "ids", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "ids.onnx"))
    estimate = KernelPredictor(fake_profile).predict(tmp_path / "ids.onnx")
    assert not estimate.uncovered and [k.kind for k in estimate.kernels] == ["conv"]
    assert "Identity" not in str(estimate.to_dict())


def test_a_profile_taken_under_load_warns_at_every_use(fake_profile: Path, tmp_path: Path) -> None:
    """Its summary warned once when it was taken; every later prediction from it says so too, with the command."""
    import json
    import shutil
    import warnings

    copy = tmp_path / "host-cpu" / "fake"
    shutil.copytree(fake_profile, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    in_network = meta.get("in_network") or {}
    (copy / "metadata.json").write_text(json.dumps({**meta, "in_network": {
        **in_network, "disturbed": {"networks": 971, "over": 0.05, "share": 0.1874, "warn": True},
        "networks_check": {"networks": 953, "within_10pct": 0.3914, "median_error": -0.083}}}))
    for _ in range(2):
        with pytest.warns(UserWarning, match=r"taken while other load slowed this machine \(19% of its networks; 39% of its "
                                             r"own held-out networks within 10%\).*--runtime fake --fresh` again"):
            predictor_for("host-cpu", "fake", tmp_path)
    (copy / "metadata.json").write_text(json.dumps({**meta, "in_network": {
        **in_network, "disturbed": {"networks": 971, "over": 0.05, "share": 0.02, "warn": False}}}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor_for("host-cpu", "fake", tmp_path)
    assert not [w for w in caught if "other load" in str(w.message)]
