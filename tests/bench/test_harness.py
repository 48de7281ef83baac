from __future__ import annotations

import time
from typing import Mapping

import numpy as np
import pytest

from edgetune.bench import BenchConfig, measure, measure_interleaved, random_inputs
from edgetune.errors import ConfigError
from edgetune.models import TensorSpec
from edgetune.runners import Session


class SleepSession(Session):
    """A fake device: each invoke takes ``ms`` (plus scheduler noise); counts calls."""

    def __init__(self, ms: float, interrupt_after: int = 0) -> None:
        self.ms = ms
        self.calls = 0
        self.interrupt_after = interrupt_after
        self.bound: Mapping[str, np.ndarray] = {}

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        self.bound = feeds

    def invoke(self) -> None:
        self.calls += 1
        if self.interrupt_after and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        deadline = time.perf_counter() + self.ms / 1e3
        while time.perf_counter() < deadline:
            pass

    def outputs(self) -> list[np.ndarray]:
        return [np.zeros(1)]


FAST = BenchConfig(warmup_runs=2, warmup_s=0.0, min_repeats=20, budget_s=2.0, ci_rel=0.05)


def test_measure_warms_up_then_converges() -> None:
    session = SleepSession(0.5)
    timing = measure(session, {"x": np.zeros(1)}, FAST)
    assert session.calls >= timing.stats.n + FAST.warmup_runs
    assert timing.stats.n >= FAST.min_repeats
    assert timing.converged and timing.stats.ci_rel <= FAST.ci_rel
    assert 0.4 < timing.stats.median_ms < 5.0
    assert len(timing.samples_ms) == timing.stats.n


def test_budget_caps_a_session_that_does_not_converge() -> None:
    config = BenchConfig(warmup_runs=1, warmup_s=0.0, min_repeats=1000, max_repeats=100000, budget_s=0.2, ci_rel=0.01)
    timing = measure(SleepSession(1.0), {"x": np.zeros(1)}, config)
    assert timing.stats.n < 1000
    assert timing.wall_s < 2.0


def test_interleaved_sessions_rank_correctly() -> None:
    sessions = {"slow": SleepSession(2.0), "fast": SleepSession(0.5)}
    timings = measure_interleaved(sessions, {n: {"x": np.zeros(1)} for n in sessions}, FAST)
    assert timings["fast"].stats.median_ms < timings["slow"].stats.median_ms
    assert sessions["fast"].bound and sessions["slow"].bound


def test_interrupt_keeps_samples() -> None:
    session = SleepSession(0.1, interrupt_after=40)
    timing = measure(session, {"x": np.zeros(1)}, BenchConfig(warmup_runs=5, warmup_s=0.0, min_repeats=1000))
    assert timing.interrupted and 0 < timing.stats.n <= 40


def test_very_short_calls_are_timed_in_groups() -> None:
    session = SleepSession(0.0)
    timing = measure(session, {"x": np.zeros(1)}, BenchConfig(warmup_runs=50, warmup_s=0.01, min_repeats=20, budget_s=0.5))
    assert timing.runs_per_sample > 1
    assert session.calls >= timing.stats.n * timing.runs_per_sample
    assert timing.stats.median_ms < 0.1


class DeviceTimedSession(SleepSession):
    def device_timed(self, count: int):
        return [2.5] * count


def test_sessions_that_time_themselves() -> None:
    session = DeviceTimedSession(0.0)
    timing = measure(session, {"x": np.zeros(1)}, FAST)
    assert timing.stats.median_ms == 2.5 and timing.stats.n >= FAST.min_repeats
    assert session.calls == 1  # one warm-up run; the device did the timed runs


def test_bad_config() -> None:
    with pytest.raises(ConfigError):
        BenchConfig(budget_s=0)
    with pytest.raises(ConfigError):
        BenchConfig(min_repeats=10, max_repeats=5)


def test_random_inputs_are_seeded_and_typed() -> None:
    specs = [TensorSpec("a", (2, 3), "float32"), TensorSpec("b", (4,), "int64")]
    first, second = random_inputs(specs, seed=3, batches=2)
    assert first["a"].dtype == np.float32 and first["b"].dtype == np.int64
    np.testing.assert_array_equal(random_inputs(specs, seed=3)[0]["a"], first["a"])
    assert not np.array_equal(first["a"], second["a"])


def test_a_hopeless_candidate_stops_early_and_says_so() -> None:
    config = BenchConfig(warmup_runs=2, warmup_s=0.0, min_repeats=2000, max_repeats=100000, budget_s=1.0,
                         ci_rel=0.0001, block=10, early_stop_ratio=3.0, early_stop_after=20)
    sessions = {"fast": SleepSession(0.1), "slow": SleepSession(2.0)}
    timings = measure_interleaved(sessions, {n: {"x": np.zeros(1)} for n in sessions}, config)
    assert timings["slow"].stopped_early.startswith("stopped early: ")
    assert "x the best (fast) after " in timings["slow"].stopped_early
    assert timings["slow"].stats.n < timings["fast"].stats.n
    assert timings["fast"].stopped_early == ""


def test_early_stop_can_be_turned_off() -> None:
    config = BenchConfig(warmup_runs=2, warmup_s=0.0, min_repeats=40, budget_s=0.5, ci_rel=0.0001, block=10,
                         early_stop_ratio=0)
    sessions = {"fast": SleepSession(0.1), "slow": SleepSession(2.0)}
    timings = measure_interleaved(sessions, {n: {"x": np.zeros(1)} for n in sessions}, config)
    assert not timings["slow"].stopped_early
