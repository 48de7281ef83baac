from __future__ import annotations

import numpy as np
import pytest

from edgetune.bench import latency_stats, median_ci


def test_median_ci_covers_true_median_about_95_percent() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        sample = rng.lognormal(0.0, 0.3, 101)  # true median = 1.0
        lo, hi = median_ci(sample)
        hits += lo <= 1.0 <= hi
    assert 0.92 <= hits / 400 <= 0.99


def test_ci_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(1)
    wide = latency_stats(rng.normal(10, 1, 50)).ci_rel
    narrow = latency_stats(rng.normal(10, 1, 5000)).ci_rel
    assert narrow < wide / 4


def test_stats_fields() -> None:
    stats = latency_stats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats.median_ms == 3.0 and stats.min_ms == 1.0 and stats.n == 5
    assert stats.p99_ms > stats.p90_ms > stats.median_ms
    assert stats.cv == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1) / 22.0)
    assert stats.ci_low_ms == 1.0 and stats.ci_high_ms == 100.0  # too few samples: the full range
    assert set(stats.to_dict()) >= {"median_ms", "p90_ms", "p99_ms", "cv", "ci_rel"}


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError):
        latency_stats([])


def test_max_and_throughput_follow_benchmark_app() -> None:
    stats = latency_stats([1.0, 2.0, 2.0, 4.0])
    assert stats.max_ms == 4.0 and stats.min_ms == 1.0
    assert stats.throughput_per_s() == pytest.approx(1000.0 / stats.median_ms)
    assert stats.throughput_per_s(8) == pytest.approx(8 * 1000.0 / 2.0)
    assert stats.to_dict()["max_ms"] == 4.0


def test_iqr_over_median_is_not_blown_up_by_one_slow_run() -> None:
    samples = [0.02] * 99 + [2.0]  # one 100x run: the CV is huge, the IQR is not
    stats = latency_stats(samples)
    assert stats.cv > 1.0 and stats.iqr_rel == 0.0
