"""--prune-to-latency-ms: the ratio search (fake measurements) and compile end to end (real prunes and timings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgetune import compile_model
from edgetune.bench import BenchConfig
from edgetune.errors import ConfigError, InfeasibleError
from edgetune.pipeline import CompileOptions, _prune_search, options_from
from edgetune.pipeline._prune_search import MAX_RATIO, search_ratio

QUICK = BenchConfig(warmup_runs=3, warmup_s=0.0, min_repeats=10, budget_s=0.3)


def _linear(ratio: float) -> tuple[float, int]:
    """A fake device: latency falls linearly from 1 ms unpruned, parameters with it."""
    return 1.0 - ratio, int(1000 * (1 - ratio))


def test_bisection_finds_the_smallest_ratio_meeting_the_goal() -> None:
    search = search_ratio(0.5, _linear, "fake")
    ratios = [s.ratio for s in search.steps]
    assert ratios[:3] == [0.0, MAX_RATIO, 0.45] and len(ratios) == _prune_search.STEPS
    assert search.chosen_ratio is not None and 0.5 <= search.chosen_ratio <= 0.5 + MAX_RATIO / 2 ** 4
    # the chosen ratio is the smallest that met the goal, and every step says whether it did
    met = [s.ratio for s in search.steps if s.met_goal]
    assert search.chosen_ratio == min(met)
    assert all(s.met_goal == (s.latency_ms <= 0.5) for s in search.steps)
    record = search.to_dict()
    assert record["goal_met"] and record["chosen_ratio"] == search.chosen_ratio
    assert [s["params"] for s in record["steps"]] == [s.params for s in search.steps]


def test_goal_met_unpruned_needs_no_pruning() -> None:
    search = search_ratio(2.0, _linear)
    assert search.chosen_ratio == 0.0 and len(search.steps) == 1
    assert "already meets" in search.to_dict()["note"]


def test_unreachable_goal_stops_after_the_largest_ratio() -> None:
    search = search_ratio(0.01, _linear)
    assert search.chosen_ratio is None and [s.ratio for s in search.steps] == [0.0, MAX_RATIO]
    assert not search.to_dict()["goal_met"]


def test_option_validation() -> None:
    with pytest.raises(ConfigError, match="positive"):
        CompileOptions(prune_to_latency_ms=0)
    assert options_from("fast", prune_to_latency_ms=0.5).prune_to_latency_ms == 0.5


def test_an_exported_program_is_a_config_error(tiny_pt2: Path, tmp_path: Path) -> None:
    # an ONNX model is prunable (converted by onnx2torch: tests/models/test_onnx_torch.py)
    for model in (tiny_pt2,):
        with pytest.raises(ConfigError, match="pruning needs a PyTorch model"):
            compile_model(model, "host-cpu", tmp_path / "out", runtimes=["onnxruntime"], config=QUICK,
                          options=CompileOptions(prune_to_latency_ms=1.0))


def _recording_meter(monkeypatch: pytest.MonkeyPatch, fake_latency) -> list[tuple[float, float, int]]:
    """Keep real prunes, exports and timings, but decide on ``fake_latency(ratio)``: tests never assert on times."""
    real = _prune_search._RatioMeter.__call__
    measured: list[tuple[float, float, int]] = []

    def call(self, ratio: float) -> tuple[float, int]:
        latency_ms, params = real(self, ratio)
        measured.append((ratio, latency_ms, params))
        return fake_latency(ratio), params

    monkeypatch.setattr(_prune_search._RatioMeter, "__call__", call)
    return measured


def _cnn():
    """1x1x8x8 -> 3 classes, wide enough that even ratio 0.9 leaves channels to remove."""
    import torch

    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 3),
    ).eval()


def _train_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "train.npz"
    np.savez(path, x=rng.standard_normal((48, 1, 8, 8)).astype(np.float32), y=rng.integers(0, 3, 48))
    return path


def test_compile_prunes_to_the_searched_ratio_and_fine_tunes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measured = _recording_meter(monkeypatch, lambda r: 1.0 - r)
    options = CompileOptions(prune_to_latency_ms=0.5, train=str(_train_npz(tmp_path)), train_epochs=1,
                             calib_samples=8, qat="never")
    out = tmp_path / "out"
    result = compile_model(_cnn(), "host-cpu", out, runtimes=["onnxruntime"], input_shape=(1, 1, 8, 8),
                           config=QUICK, options=options)
    # every step was a real prune, lowered and timed on the target
    assert len(measured) == _prune_search.STEPS
    assert all(latency > 0 for _, latency, _ in measured)
    params = {ratio: p for ratio, _, p in measured}
    assert params[MAX_RATIO] < params[0.45] < params[0.0]

    manifest = json.loads((out / "manifest.json").read_text())
    search = manifest["prune_search"]
    chosen = search["chosen_ratio"]
    assert search["goal_ms"] == 0.5 and search["measured_with"] == "onnxruntime-fp32" and search["goal_met"]
    assert [s["ratio"] for s in search["steps"]] == [r for r, _, _ in measured]
    assert 0.5 <= chosen < 0.6 and all(s["params"] > 0 for s in search["steps"])
    pruned = [c for c in manifest["candidates"] if c["options"].get("prune_ratio") == chosen]
    assert {c["name"] for c in pruned} >= {f"onnxruntime-fp32-pruned{round(chosen * 100)}"}
    fp32 = next(c for c in pruned if c["precision"] == "fp32")
    assert fp32["status"] == "ok", fp32["reason"]
    assert fp32["build_details"]["fine_tuned"] is True and fp32["build_details"]["prune_ratio"] == chosen
    assert "prune search" in (out / "summary.txt").read_text()
    assert manifest["options"]["prune_to_latency_ms"] == 0.5 and manifest["options"]["prune_ratios"] == []
    assert result.winner is not None


def test_generous_goal_measured_for_real_needs_no_pruning(tiny_module, tmp_path: Path) -> None:
    # no inference of this 8x8 CNN takes 10 s: the unpruned model meets the goal, nothing is pruned
    result = compile_model(tiny_module, "host-cpu", tmp_path / "out", runtimes=["onnxruntime"],
                           input_shape=(1, 1, 8, 8), config=QUICK,
                           options=CompileOptions(prune_to_latency_ms=10_000.0, calib_samples=8))
    search = result.evaluation.prune_search
    assert search is not None and search["chosen_ratio"] == 0.0 and len(search["steps"]) == 1
    assert search["steps"][0]["latency_ms"] > 0 and search["steps"][0]["met_goal"]
    assert not any("prune" in r.plan.lowerings for r in result.evaluation.results)


def test_unreachable_goal_is_an_infeasible_error(tiny_module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _recording_meter(monkeypatch, lambda r: 5.0)
    with pytest.raises(InfeasibleError, match=r"out of reach by pruning.*0\.9.*5 ms"):
        compile_model(tiny_module, "host-cpu", tmp_path / "out", runtimes=["onnxruntime"], input_shape=(1, 1, 8, 8),
                      config=QUICK, options=CompileOptions(prune_to_latency_ms=1.0, calib_samples=8))
