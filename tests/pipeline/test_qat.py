"""--qat auto: quantization-aware training only where post-training int8 missed the accuracy budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgetune import compile_model
from edgetune.bench import BenchConfig
from edgetune.errors import ConfigError
from edgetune.pipeline import CandidatePlan, CandidateResult, CompileOptions, _evaluate, plans_for
from edgetune.pipeline._qat import qat_skip_reason, qat_trigger, split_qat
from edgetune.targets import load_target

QUICK = BenchConfig(warmup_runs=3, warmup_s=0.0, min_repeats=10, budget_s=0.3)


def _plan(lowerings: tuple[str, ...], ratio: float | None = None) -> CandidatePlan:
    options = (("prune_ratio", ratio),) if ratio is not None else ()
    suffix = "-qat" if "tflite-int8-qat" in lowerings else ""
    name = f"litert-int8{suffix}" + (f"-pruned{round(ratio * 100)}" if ratio else "")
    return CandidatePlan(name, "litert", lowerings, "int8", options)


def _judged(plan: CandidatePlan, status: str, drop: float, reason: str = "") -> CandidateResult:
    result = CandidateResult(plan, status=status, reason=reason)
    result.accuracy = {"drop_points": drop, "max_drop_points": 1.0, "allowed": drop <= 1.0}
    return result


def test_plans_per_mode() -> None:
    target = load_target("host-cpu")
    names = {p.name for p in plans_for(target, ["litert"], CompileOptions(train="digits", prune_ratios=(0.5,)))}
    assert {"litert-int8-qat", "litert-int8-qat-pruned50"} <= names
    assert not any("qat" in p.name for p in plans_for(target, ["litert"], CompileOptions(train="digits", qat="never")))
    assert not any("qat" in p.name for p in plans_for(target, ["litert"], CompileOptions()))  # no --train
    plans = plans_for(target, ["litert"], CompileOptions(train="digits"))
    first, deferred = split_qat(plans, "auto")
    assert [p.name for p in deferred] == ["litert-int8-qat"] and "litert-int8" in {p.name for p in first}
    assert split_qat(plans, "always") == (plans, [])


def test_option_validation() -> None:
    with pytest.raises(ConfigError, match="--qat always needs --train"):
        CompileOptions(qat="always")
    with pytest.raises(ConfigError, match="unknown --qat mode"):
        CompileOptions(qat="sometimes")  # type: ignore[arg-type]


def test_skip_reason_follows_the_counterpart_at_the_same_pruning_level() -> None:
    qat, qat_pruned = _plan(("tflite-int8-qat",)), _plan(("prune", "tflite-int8-qat"), 0.5)
    results = [
        _judged(_plan(("tflite-int8",)), "ok", 0.25),
        _judged(_plan(("prune", "tflite-int8"), 0.5), "rejected", 3.0, "accuracy drops 3.00 points, over the budget of 1"),
    ]
    reason = qat_skip_reason(qat, results)
    assert reason.startswith("post-training int8 met the accuracy budget (litert-int8: drop 0.25 pts")
    assert qat_skip_reason(qat_pruned, results) == ""
    assert qat_trigger(qat_pruned, results).startswith("litert-int8-pruned50 rejected: accuracy drops 3.00")
    failed = [CandidateResult(_plan(("tflite-int8",)), status="failed", reason="conversion failed")]
    assert qat_skip_reason(qat, failed) == "" and "failed" in qat_trigger(qat, failed)
    assert qat_skip_reason(qat, []) == ""  # nothing to go by: train


def _train_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "train.npz"
    np.savez(path, x=rng.standard_normal((48, 1, 8, 8)).astype(np.float32), y=rng.integers(0, 3, 48))
    return path


def _compile(module, tmp_path: Path, **options) -> dict:
    out = tmp_path / "out"
    compile_model(module, "host-cpu", out, runtimes=["litert"], input_shape=(1, 1, 8, 8), config=QUICK,
                  options=CompileOptions(train=str(_train_npz(tmp_path)), train_epochs=1, **options))
    return {c["name"]: c for c in json.loads((out / "manifest.json").read_text())["candidates"]}


def test_qat_skipped_when_post_training_int8_meets_the_budget(tiny_module, tmp_path: Path) -> None:
    candidates = _compile(tiny_module, tmp_path, max_accuracy_drop=100.0)
    assert candidates["litert-int8"]["status"] == "ok"
    qat = candidates["litert-int8-qat"]
    assert qat["status"] == "skipped" and qat["artifact"] is None
    assert qat["reason"].startswith("post-training int8 met the accuracy budget (litert-int8: drop ")


def test_qat_runs_when_post_training_int8_misses_the_budget(tiny_module, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = _evaluate._verdict

    def strict_on_ptq(plan, result, tolerance):
        if plan.lowerings == ("tflite-int8",):  # as if post-training int8 lost 5 points
            return "rejected", "accuracy drops 5.00 points, over the budget of 1"
        return real(plan, result, tolerance)

    monkeypatch.setattr(_evaluate, "_verdict", strict_on_ptq)
    candidates = _compile(tiny_module, tmp_path, max_accuracy_drop=100.0)
    assert candidates["litert-int8"]["status"] == "rejected"
    qat = candidates["litert-int8-qat"]
    assert qat["status"] == "ok", qat["reason"]
    assert qat["latency"]["median_ms"] > 0 and qat["build_details"]["fine_tune"]["epochs"] == 1
    assert qat["build_details"]["qat_because"].startswith("litert-int8 rejected: accuracy drops 5.00")
