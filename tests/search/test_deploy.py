"""The deployment phase: precision and pruning choices go through the compile pipeline's Lowerings."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.errors import ConfigError
from edgetune.search import SearchConfig, SearchSpace, candidate_graph, search
from edgetune.search._deploy import deploy_precisions, plan_for
from edgetune.targets import load_target
from tests.search._fakes import MacsPredictor

DEPLOY_SPACE = SearchSpace("plain", {"resolution": [8], "blocks": [2], "channels": [8]}, {
    "lr": [1e-2, 1e-2], "weight_decay": [1e-5, 1e-5], "batch_size": [64], "optimizer": ["adam"], "epochs": [1, 1],
    "label_smoothing": [0.0]}, {"precision": ["int8"], "prune_ratio": [0.5]})


def test_plans_come_from_the_compile_pipeline() -> None:
    host = load_target("host-cpu")
    assert deploy_precisions(host, "onnxruntime") == ["fp32", "int8"]
    assert plan_for(host, "onnxruntime", "int8", 0.5, 0, 1).lowerings == ("prune", "onnx", "ort-int8-static")
    assert plan_for(host, "onnxruntime", "fp32", 0.0, 0, 1).lowerings == ("onnx",)
    with pytest.raises(ConfigError, match="no fp16 build"):
        plan_for(host, "onnxruntime", "fp16", 0.0, 0, 1)


def test_pruned_int8_trial_is_lowered_scored_and_measured(tmp_path: Path) -> None:
    result = search("host-cpu", tmp_path, SearchConfig(trials=1, max_epochs=1, strategy="random"), DEPLOY_SPACE,
                    predictor=MacsPredictor(), compile_winner=False, top_k=1)
    trial = result.trials[0]
    assert trial.state == "complete" and trial.candidate["deploy"] == {"precision": "int8", "prune_ratio": 0.5}
    assert trial.latency_source == "measured" and trial.latency_ms is not None and trial.latency_ms > 0
    assert (tmp_path / "trials" / "trial-0.pruned.pt2").exists() and (tmp_path / "trials" / "trial-0.int8.onnx").exists()
    # the pruned network is predicted from its own (smaller) graph; int8 weights take a byte each
    full = MacsPredictor().predict(candidate_graph(DEPLOY_SPACE.smallest(), 1, 10)).total_ms
    assert trial.predicted_ms is not None and trial.predicted_ms < full
    import json

    attrs = json.loads((tmp_path / "search.json").read_text())["trials"][0]
    assert attrs["latency_source"] == "measured" and 0.0 <= attrs["accuracy"] <= 1.0


def test_precision_the_target_cannot_build_is_an_error(tmp_path: Path) -> None:
    space = SearchSpace("plain", {"resolution": [8]}, {}, {"precision": ["fp16"]})
    with pytest.raises(ConfigError, match="fp16"):
        search("host-cpu", tmp_path, SearchConfig(trials=1, max_epochs=1), space, predictor=MacsPredictor(),
               compile_winner=False)
