"""Latency statistics: percentiles, spread, throughput and a distribution-free confidence interval of the median."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence, Union

import numpy as np


def prepare_statistics() -> None:
    """Import scipy.stats now (about 0.5 s the first time), so that no timing budget pays for it."""
    import scipy.stats  # noqa: F401


def median_ci(samples: Union[Sequence[float], np.ndarray], confidence_level: float = 0.95) -> tuple[float, float]:
    """CI of the median from order statistics: exact (binomial, scipy's quantile_test), no normality assumed.

    Below 6 samples no pair of order statistics reaches 95%: the full range is returned.
    """
    values = np.asarray(samples, dtype=float)
    n = len(values)
    if n < 6:
        return float(values.min()), float(values.max())
    from scipy.stats import quantile_test  # 0.5 s to import: not on the CLI's start-up path

    ci = quantile_test(values, q=float(np.median(values)), p=0.5).confidence_interval(confidence_level)
    if math.isnan(ci.low) or math.isnan(ci.high):  # a level no order statistics reach at this n
        return float(values.min()), float(values.max())
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of latency samples in milliseconds."""

    n: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    cv: float
    ci_low_ms: float
    ci_high_ms: float
    iqr_ms: float = 0.0  # p75 - p25: a spread rare outliers cannot inflate (unlike std / CV)
    max_ms: float = 0.0  # the slowest sample (benchmark_app's "Max"); 0.0 in rows stored before it existed

    @property
    def iqr_rel(self) -> float:
        """IQR / median: the spread a table shows (a 300% CV on a 20-us model says only that one run was slow)."""
        return self.iqr_ms / self.median_ms if self.median_ms else 0.0

    def throughput_per_s(self, batch: int = 1) -> float:
        """Inferences per second at the median latency: ``batch`` x 1000 / median (benchmark_app's definition)."""
        return batch * 1000.0 / self.median_ms if self.median_ms > 0 else 0.0

    @property
    def ci_rel(self) -> float:
        """Half-width of the median's CI relative to the median (the larger side)."""
        return max(self.median_ms - self.ci_low_ms, self.ci_high_ms - self.median_ms) / self.median_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ci_rel": self.ci_rel, "iqr_rel": self.iqr_rel}


def latency_stats(samples_ms: Sequence[float]) -> LatencyStats:
    """Compute LatencyStats from raw samples (ms)."""
    values = np.asarray(samples_ms, dtype=float)
    if values.size == 0:
        raise ValueError("no samples")
    lo, hi = median_ci(values)
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return LatencyStats(
        n=int(values.size),
        median_ms=float(np.median(values)),
        p90_ms=float(np.percentile(values, 90)),
        p99_ms=float(np.percentile(values, 99)),
        mean_ms=mean,
        std_ms=std,
        min_ms=float(values.min()),
        cv=std / mean if mean > 0 else 0.0,
        ci_low_ms=lo,
        ci_high_ms=hi,
        iqr_ms=float(np.percentile(values, 75) - np.percentile(values, 25)),
        max_ms=float(values.max()),
    )
