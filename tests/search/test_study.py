from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetune.errors import DatasetError, InfeasibleError
from edgetune.search import SearchConfig, SearchError, SearchSpace, search, study_status
from tests.search._fakes import MacsPredictor

SPACE = SearchSpace("plain", {"resolution": [8], "blocks": [1, 2], "channels": [4, 8]}, {
    "lr": [3e-3, 1e-2], "weight_decay": [1e-5, 1e-4], "batch_size": [128], "optimizer": ["adam"], "epochs": [1, 2],
    "label_smoothing": [0.0], "aug_shift": [0, 1], "aug_noise": [0.0]}, {"precision": ["fp32"], "prune_ratio": [0.0]})


def _run(out: Path, trials: int, **kw):  # type: ignore[no-untyped-def]
    config = SearchConfig(trials=trials, max_epochs=1, strategy=kw.pop("strategy", "random"), **kw)
    return search("host-cpu", out, config, SPACE, predictor=MacsPredictor(), compile_winner=kw.pop("compile", False))


def test_search_finds_a_front_measures_and_writes_outputs(tmp_path: Path) -> None:
    result = _run(tmp_path, 4, latency_budget_ms=1.0)
    assert len(result.trials) == 4 and result.front and result.winner is not None
    assert result.winner.measured_ms is not None and result.winner.measured_ms <= 1.0
    data = json.loads((tmp_path / "search.json").read_text())
    assert data["winner"]["number"] == result.winner.number and len(data["trials"]) == 4
    assert all(t["candidate"]["hp"] for t in data["trials"]) and data["config"]["seed"] == 0
    assert (tmp_path / "pareto.svg").read_text().startswith("<svg")
    assert (tmp_path / "trials" / f"trial-{result.winner.number}.pt").exists()


def test_infeasible_candidates_are_not_trained(tmp_path: Path) -> None:
    # budget between the smallest and the largest network of the space
    predictor = MacsPredictor()
    from edgetune.search import candidate_graph

    small = predictor.predict(candidate_graph(SPACE.smallest(), 1, 10)).total_ms
    result = search("host-cpu", tmp_path, SearchConfig(trials=6, max_epochs=1, strategy="random", latency_budget_ms=small * 1.01),
                    SPACE, predictor=predictor, compile_winner=False)
    rejected = [t for t in result.trials if t.rejected]
    assert rejected and all("not trained" in t.rejected for t in rejected)
    assert not any((tmp_path / "trials" / f"trial-{t.number}.pt").exists() for t in rejected)
    assert all(t.predicted_ms <= small * 1.01 for t in result.front)


def test_resume_keeps_finished_trials(tmp_path: Path) -> None:
    first = _run(tmp_path, 2)
    second = _run(tmp_path, 3)
    assert [t.number for t in second.trials[:2]] == [t.number for t in first.trials]
    assert len(second.trials) == 3 and second.trials[0].accuracy == first.trials[0].accuracy
    status = study_status(f"sqlite:///{tmp_path / 'study.db'}")
    assert status[0]["trials"] == 3 and status[0]["states"]["complete"] == 3


@pytest.mark.parametrize("strategy, pruner", [("tpe", "median"), ("gp", "hyperband"), ("grid", "none")])
def test_single_objective_strategies_and_pruners(tmp_path: Path, strategy: str, pruner: str) -> None:
    result = _run(tmp_path, 3, objective="accuracy", strategy=strategy, pruner=pruner)
    assert result.front and all(t.accuracy is not None for t in result.front)
    assert len({t.number for t in result.trials}) == 3


def test_pruner_stops_a_bad_learning_curve(tmp_path: Path) -> None:
    """A trial whose curve sits below the median of earlier trials at the same epoch is pruned."""
    import optuna

    from edgetune.search._study import _pruner

    study = optuna.create_study(direction="maximize", pruner=_pruner("median", multi=False))
    for value in (0.9, 0.8, 0.85):
        t = study.ask()
        t.report(value, 1)
        study.tell(t, value)
    bad = study.ask()
    bad.report(0.1, 1)
    assert bad.should_prune()
    assert isinstance(_pruner("median", multi=True), optuna.pruners.NopPruner)  # multi-objective trials cannot report


def test_three_objectives_with_size(tmp_path: Path) -> None:
    result = _run(tmp_path, 3, objective="accuracy-latency-size")
    assert result.front and all(t.size_kb is not None and t.size_kb > 0 for t in result.trials)


def test_winner_is_compiled(tmp_path: Path) -> None:
    config = SearchConfig(trials=2, max_epochs=1, strategy="random")
    result = search("host-cpu", tmp_path, config, SPACE, predictor=MacsPredictor(), compile_runtimes=["onnxruntime"])
    assert result.compiled is not None and result.compiled.artifact.exists()
    assert (tmp_path / "compiled" / "manifest.json").exists()


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        _run(tmp_path / "a", 1, dataset="no-such-data")
    with pytest.raises(InfeasibleError, match="no network in the 'plain' space can meet"):
        _run(tmp_path / "b", 1, latency_budget_ms=1e-6)
    with pytest.raises(SearchError, match="cannot open the study storage") as err:
        _run(tmp_path / "c", 1, storage="postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(err.value)
    from edgetune.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown strategy"):
        SearchConfig(strategy="annealing")


class _InterruptingPredictor(MacsPredictor):
    """Ctrl-C arrives while the third trial is being predicted."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.calls, self.after = 0, after

    def predict_many(self, graphs):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return super().predict_many(graphs)


def test_ctrl_c_then_the_same_command_resumes(tmp_path: Path) -> None:
    config = SearchConfig(trials=4, max_epochs=1, strategy="random")
    with pytest.raises(KeyboardInterrupt):
        search("host-cpu", tmp_path, config, SPACE, predictor=_InterruptingPredictor(after=3), compile_winner=False)
    kept = study_status(f"sqlite:///{tmp_path / 'study.db'}")[0]["states"]
    assert kept.get("complete") == 2  # the smallest-network check + 2 trials predicted before the interrupt
    result = search("host-cpu", tmp_path, config, SPACE, predictor=MacsPredictor(), compile_winner=False)
    assert sum(t.state == "complete" for t in result.trials) == 4


def test_the_search_calibrates_its_predictor_once_per_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from edgetune.predict._calibrate import Calibration

    predict = sys.modules["edgetune.predict"]  # the package (edgetune.predict the attribute is the function)

    calls: list[object] = []

    def predictor_for(target, runtime, profiles_dir=None, calibrate=False, **kw):  # type: ignore[no-untyped-def]
        calls.append(calibrate)
        fake = MacsPredictor()
        fake.calibration = Calibration(factor=1.3, noise=0.02, networks=6, seconds=0.1, ratios=(1.3,) * 6)  # type: ignore[attr-defined]
        return fake

    monkeypatch.setattr(predict, "predictor_for", predictor_for)
    messages: list[str] = []
    config = SearchConfig(trials=3, max_epochs=1, strategy="random", latency_budget_ms=1.0)
    result = search("host-cpu", tmp_path, config, SPACE, predictor=None, compile_winner=False, progress=messages.append)
    assert len(result.trials) == 3
    assert calls == ["auto"]  # one predictor, calibrated once, for every trial of the study
    assert sum("calibrated on 6 reference networks" in m and "30.0% slower" in m for m in messages) == 1


def test_opening_a_study_says_nothing_about_optunas_experimental_features(tmp_path: Path) -> None:
    import warnings

    from edgetune.search import open_study
    from edgetune.search._study import _sampler

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ExperimentalWarning would raise here
        study = open_study(f"sqlite:///{tmp_path / 'study.db'}", "quiet", ["maximize"], sampler=_sampler("grid", 0, None))
    assert study.study_name == "quiet"
