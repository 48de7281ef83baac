from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import ConfigError
from edgetune.predict import GraphMeasurer, KernelPredictor, ProfileError, profile
from edgetune.predict._measure import KERNEL_CONFIG
from edgetune.targets import load_target
from tests.predict._fake import FAKE_RULES, FakeRunner, fake_latency_ms, rounds_clock

BUDGET_MIN = 0.12  # ~7 s of fake measurements


def _measurer(runner: FakeRunner, threads: int = 1) -> GraphMeasurer:
    return GraphMeasurer(load_target("host-cpu"), "fake", threads, config=KERNEL_CONFIG, runner=runner)


def test_profile_writes_every_file(fake_profile: Path) -> None:
    for name in ("measurements.csv", "chains.jsonl", "fusion.json", "state.json", "environment.json", "metadata.json",
                 "models/models.json", "models/conv.lgb.txt", "borders.jsonl", "references.json"):
        assert (fake_profile / name).exists(), name
    meta = json.loads((fake_profile / "metadata.json").read_text())
    assert set(meta["fusion"]) == {"+".join(p) for p in FAKE_RULES.pairs}
    # one round of the fake profile: some 200 kernels, 10 convs held out
    assert meta["kernels"] > 100 and meta["held_out"]["conv"]["kernels"] >= 5
    assert meta["versions"]["lightgbm"] and meta["environment"]["threads"] == 1
    assert not list(fake_profile.rglob("*.pkl")) and not list(fake_profile.rglob("*.pickle"))
    references = json.loads((fake_profile / "references.json").read_text())
    assert 4 <= len(references["networks"]) <= 20 and all(len(r["passes_ms"]) == 2 for r in references["networks"])
    assert references["machine"]["cpu_model"] and meta["machine"] == references["machine"]


def test_kernel_predictor_recovers_fake_latencies(fake_profile: Path) -> None:
    from benchmarks.predictor.networks import generate

    predictor = KernelPredictor(fake_profile)
    graphs = generate(20, seed=5)
    estimates = predictor.predict_many(graphs)
    truth = np.array([fake_latency_ms(g) for g in graphs])
    pred = np.array([e.total_ms for e in estimates])
    rel = np.abs(pred / truth - 1)
    assert np.median(rel) < 0.25, rel  # a few seconds of fake profiling: coarse, but far from FLOPs-only guesses
    assert all(e.low_ms <= e.total_ms <= e.high_ms for e in estimates)
    assert all(k.kind.startswith(("conv", "dwconv", "fc", "add", "maxpool", "avgpool", "gap", "relu", "relu6", "bn"))
               for k in estimates[0].kernels)
    # batch and one-by-one agree
    assert predictor.predict(graphs[0]).total_ms == pytest.approx(estimates[0].total_ms)


def test_interrupted_profile_resumes_where_it_stopped(tmp_path: Path) -> None:
    target = load_target("host-cpu")
    with _measurer(FakeRunner(interrupt_after=400)) as m:  # a budget it cannot use up: the interrupt comes first
        first = profile(target, "fake", 10.0, tmp_path, measurer=m)
    assert first.interrupted and first.kernels > 0
    kept = (first.folder / "measurements.csv").read_text().splitlines()
    with _measurer(FakeRunner()) as m:
        second = profile(target, "fake", BUDGET_MIN, tmp_path, measurer=m)
    assert not second.interrupted and second.kernels == first.kernels + second.new_kernels
    again = (first.folder / "measurements.csv").read_text().splitlines()
    assert again[: len(kept)] == kept  # nothing measured before the interrupt was lost or rewritten
    state = json.loads((first.folder / "state.json").read_text())
    assert state["elapsed_s"] >= BUDGET_MIN * 60


def test_resuming_a_finished_profile_keeps_its_reference_times(fake_profile: Path, tmp_path: Path) -> None:
    """Nothing left to measure: the regressors are refitted, the references are not re-timed."""
    import shutil

    root = tmp_path / "profiles"
    shutil.copytree(fake_profile.parent.parent, root)
    folder = root / "host-cpu" / "fake"
    before = (folder / "references.json").read_text()
    with _measurer(FakeRunner()) as m:
        again = profile(load_target("host-cpu"), "fake", BUDGET_MIN, root, measurer=m)
    assert again.new_kernels == 0 and not again.interrupted
    assert (folder / "references.json").read_text() == before


def test_profile_refuses_a_different_setup(fake_profile: Path) -> None:
    with _measurer(FakeRunner(), threads=2) as m, pytest.raises(ProfileError, match="different threads.*--fresh"):
        profile(load_target("host-cpu"), "fake", BUDGET_MIN, fake_profile.parent.parent, measurer=m)


def test_corrupt_state_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "host-cpu" / "fake"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text("{not json")
    with _measurer(FakeRunner()) as m, pytest.raises(ProfileError, match="corrupt"):
        profile(load_target("host-cpu"), "fake", BUDGET_MIN, tmp_path, measurer=m)


def test_bad_budget_and_runtime() -> None:
    with pytest.raises(ConfigError, match="budget"):
        profile(load_target("host-cpu"), "onnxruntime", 0)
    with pytest.raises(ConfigError, match="does not list runtime"):
        profile(load_target("host-cpu"), "vela", 1)


def test_interrupt_during_fusion_detection_resumes(tmp_path: Path) -> None:
    target = load_target("host-cpu")
    with _measurer(FakeRunner(interrupt_after=30)) as m:
        first = profile(target, "fake", BUDGET_MIN, tmp_path, measurer=m)
    assert first.interrupted and first.kernels == 0 and not (first.folder / "fusion.json").exists()
    assert json.loads((first.folder / "state.json").read_text())["overhead_ms"] > 0  # the overhead step is kept
    with rounds_clock(1), _measurer(FakeRunner()) as m:  # a loaded machine detected fusion for all of BUDGET_MIN
        second = profile(target, "fake", BUDGET_MIN, tmp_path, measurer=m)
    assert not second.interrupted and second.fusion.pairs == FAKE_RULES.pairs


def test_fresh_keeps_other_files_in_the_folder(tmp_path: Path) -> None:
    """profiles/<target>/tvm/ also holds TVM tuning records: --fresh must delete only the predictor's files."""
    folder = tmp_path / "host-cpu" / "fake"
    (folder / "znver5-abc123").mkdir(parents=True)
    (folder / "znver5-abc123" / "database_tuning_record.json").write_text("{}")
    (folder / "state.json").write_text("{not json")
    with rounds_clock(1), _measurer(FakeRunner()) as m:
        result = profile(load_target("host-cpu"), "fake", BUDGET_MIN, tmp_path, measurer=m, fresh=True)
    assert (folder / "znver5-abc123" / "database_tuning_record.json").exists()
    assert json.loads((folder / "state.json").read_text())["schema"] == 1 and result.folder == folder


def test_new_kernels_are_drawn_next_to_the_ones_the_model_errs_on() -> None:
    from edgetune.predict._profile import _near_worst
    from edgetune.predict._regress import bagged_ensemble

    x = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [2.0, 0.0]])
    pool = np.array([[0.0, 0.1], [4.9, 5.2], [1.0, 1.0], [2.1, 0.1]])
    assert _near_worst(x, np.array([0.01, np.nan, 0.9, 0.5]), pool, 2) == [1, 3]  # worst first; an unseen row skipped
    assert _near_worst(x, np.full(4, np.nan), pool, 2) == []
    rng = np.random.default_rng(0)
    features = rng.uniform(1, 10, size=(40, 20))
    features[:, 6:9] = np.log1p(features[:, 6:9] * 1000)  # log_macs, log_in, log_out: the baseline's terms
    spread, oob = bagged_ensemble(features, features[:, 0] * 0.01, features[:5], members=3)
    assert spread.shape == (5,) and oob.shape == (40,) and np.isfinite(oob).sum() > 20


def test_extended_profiling_networks_come_from_their_own_stream() -> None:
    """Fire blocks, swish and flattened FC heads only in the extended stream; the first stream draws as before."""
    from edgetune.predict._sampling import extended_rng, sample_network

    def kinds(graphs):  # type: ignore[no-untyped-def]
        return {op.kind for g in graphs for op in g.ops}

    def widest_fc(graphs):  # type: ignore[no-untyped-def]
        return max(op.cin * op.hin * op.win for g in graphs for op in g.ops if op.kind == "fc")

    rng = np.random.default_rng(5)
    plain = [sample_network(rng, i) for i in range(40)]
    assert "swish" not in kinds(plain) and "flatten" not in kinds(plain) and widest_fc(plain) <= 640
    extended = [sample_network(extended_rng(5, 15 * i), i, extended=True) for i in range(40)]
    assert {"swish", "flatten", "concat"} <= kinds(extended) and 2048 < widest_fc(extended) <= 16384
    fire = [op for g in extended for op in g.ops if op.kind == "concat" and len(op.inputs) == 2
            and all(i.startswith("swish") or i.startswith("relu") or i.startswith("hswish") or i.startswith("relu6")
                    for i in op.inputs)]
    assert fire  # two activated conv branches concatenated
    again = np.random.default_rng(5)
    assert [g.ops for g in plain] == [sample_network(again, i).ops for i in range(40)]
    assert [g.ops for g in extended[:3]] == [sample_network(extended_rng(5, 15 * i), i, extended=True).ops for i in range(3)]
