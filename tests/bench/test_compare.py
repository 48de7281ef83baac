"""The regression gate: verdicts, environment checks, baselines, JUnit, and catching a real slowdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pytest

from edgetune.bench import (
    BenchConfig,
    ResultsStore,
    compare,
    export_baseline,
    junit_xml,
    load_side,
    measure,
    ratio_interval,
)
from edgetune.bench._inject import SlowedSession
from edgetune.errors import ConfigError
from edgetune.runners import get_runner

ENV = {"cpu_model": "X", "arch": "x86_64", "threads": 2, "libraries": {"onnxruntime": "1"}, "governor": "g",
       "python": "3.11", "numpy": "2", "target": "host-cpu"}


def _rows(run: str, medians: list[float], entry: str = "net", spread: float = 0.02, seed: int = 0,
          status: str = "ok", env: Mapping = ENV) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"run_id": run, "entry": entry, "model_name": entry, "candidate": "onnxruntime-fp32", "status": status,
             "error": None, "fingerprint": dict(env),
             "samples_ms": list(rng.normal(m, m * spread, 200))} for m in medians]


def test_ratio_interval_covers_truth() -> None:
    base = [np.random.default_rng(i).normal(1.0, 0.02, 200) for i in range(3)]
    cand = [np.random.default_rng(10 + i).normal(1.2, 0.02, 200) for i in range(3)]
    ratio, low, high = ratio_interval(base, cand)
    assert low < 1.2 < high and abs(ratio - 1.2) < 0.02


def test_verdicts() -> None:
    base = _rows("a", [1.0, 1.01, 0.99])
    assert compare(base, _rows("b", [1.0, 0.995, 1.005], seed=1))[0].verdict == "no change"
    assert compare(base, _rows("b", [1.15, 1.16, 1.14], seed=1))[0].verdict == "regression"
    assert compare(base, _rows("b", [0.8, 0.81, 0.79], seed=1))[0].verdict == "improvement"
    # significant but smaller than the threshold: not a regression
    assert compare(base, _rows("b", [1.03, 1.03, 1.03], seed=1), default_threshold=0.05)[0].verdict == "no change"
    # session-to-session noise widens the interval: 6% shift with +-8% sessions is not proven
    noisy_base = _rows("a", [0.92, 1.0, 1.08])
    noisy = compare(noisy_base, _rows("b", [0.98, 1.06, 1.14], seed=1))[0]
    assert noisy.verdict == "no change" and noisy.ci_low < 1 < noisy.ci_high


def test_missing_broken_new() -> None:
    base = _rows("a", [1.0]) + _rows("a", [1.0], entry="gone")
    cand = _rows("b", [1.0], status="failed") + _rows("b", [1.0], entry="fresh")
    verdicts = {c.entry: c.verdict for c in compare(base, cand)}
    assert verdicts == {"net": "broken", "gone": "missing", "fresh": "new"}
    xml = junit_xml(compare(base, cand))
    assert 'failures="2"' in xml and "<failure" in xml


def test_environment_mismatch_is_refused_with_reason() -> None:
    other = {**ENV, "threads": 1, "libraries": {"onnxruntime": "2"}}
    with pytest.raises(ConfigError, match="threads.*--allow-env-mismatch"):
        compare(_rows("a", [1.0]), _rows("b", [1.0], env=other))
    assert compare(_rows("a", [1.0]), _rows("b", [1.0], env=other), allow_env_mismatch=True)


def test_baseline_file_round_trip(tmp_path: Path) -> None:
    path = export_baseline(_rows("a", [1.0, 1.0]), tmp_path / "baselines" / "host-cpu.json")
    label, rows = load_side(str(path), store=None)
    assert "host-cpu.json" in label and len(rows) == 2
    (tmp_path / "bad.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ConfigError, match="not an edgetune baseline"):
        load_side(str(tmp_path / "bad.json"), store=None)


def test_gate_catches_an_injected_slowdown(tiny_onnx: Path) -> None:
    config = BenchConfig(warmup_runs=5, warmup_s=0.05, min_repeats=50, budget_s=0.5)
    feeds = {"input": np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)}
    runner = get_runner("onnxruntime")

    def session(slow: bool, index: int) -> dict:
        with runner.load(tiny_onnx, threads=1) as loaded:
            median = measure(loaded, feeds, config).stats.median_ms
            timed = measure(SlowedSession(loaded, median) if slow else loaded, feeds, config)
        return {"run_id": "slow" if slow else "base", "entry": "tiny", "model_name": "tiny",
                "candidate": "onnxruntime-fp32", "status": "ok", "fingerprint": ENV,
                "samples_ms": list(timed.samples_ms), "session_index": index}

    # interleaved, and twice as slow: the machine's drift between sessions (a parallel test suite's load
    # comes and goes) must not hide the injected slowdown
    pairs = [(session(False, i), session(True, i)) for i in range(3)]
    verdict = compare([base for base, _slow in pairs], [slow for _base, slow in pairs])[0]
    assert verdict.verdict == "regression" and verdict.ratio > 1.3, verdict


def test_runs_and_latest_from_store(tmp_path: Path) -> None:
    from tests.bench.test_store import _record

    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.append(_record("r1"))
        store.append(_record("r2"))
        assert load_side("latest", store)[0] == "run r2"
        assert load_side("previous", store)[0] == "run r1"
        with pytest.raises(ConfigError, match="recent runs: r1, r2"):
            load_side("nope", store)
