"""Timing harness: warm-up, then repeats until the median's 95% CI is within a bound or time runs out.

Several sessions can be timed interleaved (round-robin blocks), so that a slow minute of
a noisy machine hits every candidate alike instead of whichever ran then.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edgetune.bench._stats import LatencyStats, latency_stats, prepare_statistics
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.models import TensorSpec
from edgetune.runners import Session


@dataclass(frozen=True)
class BenchConfig:
    """How long and how precisely to measure."""

    warmup_runs: int = 10
    warmup_s: float = 0.2
    min_repeats: int = 30
    max_repeats: int = 20000
    budget_s: float = 10.0
    ci_rel: float = 0.01  # stop when the median's 95% CI is within +-1%
    block: int = 10
    # ...and at least this long: each block starts with one untimed group of runs, and a short block would
    # be mostly the caches and thread wake-ups the previous candidate's block disturbed
    block_ms: float = 20.0
    # Calls shorter than this are timed in groups (one sample = mean of the group), as TVM's
    # time_evaluator does with `number`: the clock's overhead and resolution stay below 1%.
    min_sample_ms: float = 0.1
    # A candidate whose median's CI lies wholly above this many times the best candidate's CI, once both
    # have early_stop_after samples, stops being timed (and is reported as stopped early); 0 never stops.
    early_stop_ratio: float = 3.0
    early_stop_after: int = 20
    # fixed-count mode (`bench --iterations N`): exactly N samples per candidate, no CI stop, no time budget
    iterations: Optional[int] = None

    def __post_init__(self) -> None:
        if self.iterations is not None and self.iterations < 1:
            raise ConfigError(f"--iterations must be at least 1, got {self.iterations}")
        if self.budget_s <= 0:
            raise ConfigError(f"benchmark time budget must be positive, got {self.budget_s} s")
        if self.min_repeats < 1 or self.max_repeats < self.min_repeats:
            raise ConfigError(f"need 1 <= min_repeats <= max_repeats, got {self.min_repeats} and {self.max_repeats}")
        if not 0 < self.ci_rel < 1:
            raise ConfigError(f"ci_rel must be in (0, 1), got {self.ci_rel}")


@dataclass
class TimingSampler:
    """Collects latency samples of one session."""

    session: Session
    samples_ms: list[float] = field(default_factory=list)
    runs_per_sample: int = 1
    blocks: list[Any] = field(default_factory=list)  # filled by samplers that know which process ran a block

    def warmup(self, config: BenchConfig) -> None:
        if self.session.device_timed(0) is not None:
            self.session.invoke()  # one run to load code and caches; the device handles its own warm-up
            return
        start = time.perf_counter()
        deadline = start + config.warmup_s
        runs = 0
        while runs < config.warmup_runs or time.perf_counter() < deadline:
            self.session.invoke()
            runs += 1
        per_call_ms = (time.perf_counter() - start) * 1e3 / runs
        if per_call_ms < config.min_sample_ms:
            self.runs_per_sample = int(math.ceil(config.min_sample_ms / max(per_call_ms, 1e-6)))

    def sample(self, count: int) -> None:
        timed = self.session.device_timed(count)
        if timed is not None:  # the device timed itself (RPC board, simulator)
            self.samples_ms.extend(timed)
            return
        invoke = self.session.invoke
        clock = time.perf_counter_ns
        group = self.runs_per_sample
        scale = 1e6 * group
        for _ in range(group):  # untimed: wakes the runtime's threads and refills the caches after another block
            invoke()
        for _ in range(count):
            start = clock()
            for _ in range(group):
                invoke()
            self.samples_ms.append((clock() - start) / scale)

    def block_size(self, config: BenchConfig) -> int:
        """Samples in the next block: ``config.block``, or more to last ``config.block_ms`` at the median so far."""
        left = max(config.max_repeats - len(self.samples_ms), 1)  # a fixed count (--iterations) is never overshot
        if not self.samples_ms:
            return min(config.block, left)
        per_sample_ms = float(np.median(self.samples_ms)) * self.runs_per_sample
        return min(max(config.block, int(config.block_ms / max(per_sample_ms, 1e-6))), left)

    def done(self, config: BenchConfig) -> bool:
        n = len(self.samples_ms)
        if n >= config.max_repeats:
            return True
        if n < config.min_repeats:
            return False
        return latency_stats(self.samples_ms).ci_rel <= config.ci_rel


class SamplingSession(ABC):
    """A session that brings its own sampler (one timed in a worker process runs the harness's loop there)."""

    @abstractmethod
    def sampler(self) -> TimingSampler:
        """The sampler that times this session."""


@dataclass(frozen=True)
class Timing:
    """Result of timing one session: statistics, raw samples and whether the CI bound was met."""

    stats: LatencyStats
    samples_ms: tuple[float, ...]
    converged: bool
    wall_s: float
    interrupted: bool = False
    runs_per_sample: int = 1
    stopped_early: str = ""  # why timing stopped before the CI bound or the budget, e.g. "stopped early: 4.1x ..."
    blocks: tuple[Any, ...] = ()  # per block of runs, which process ran it and when (isolated workers)


def sampler_for(session: Session) -> TimingSampler:
    """The sampler that times ``session``: its own (a worker process's) or the harness's in-process one."""
    return session.sampler() if isinstance(session, SamplingSession) else TimingSampler(session)


def _hopeless(samplers: Mapping[str, TimingSampler], pending: Sequence[str], config: BenchConfig) -> dict[str, str]:
    """Pending candidates clearly ``early_stop_ratio`` x slower than the best, beyond both CIs, and why."""
    if config.early_stop_ratio <= 0 or config.iterations is not None or len(samplers) < 2:
        return {}
    stats = {name: latency_stats(s.samples_ms) for name, s in samplers.items()
             if len(s.samples_ms) >= config.early_stop_after}
    if len(stats) < 2:
        return {}
    best = min(stats, key=lambda name: stats[name].ci_high_ms)
    bound = config.early_stop_ratio * stats[best].ci_high_ms
    stopped = {}
    for name in pending:
        if name != best and name in stats and stats[name].ci_low_ms > bound:
            ratio = stats[name].median_ms / stats[best].median_ms
            runs = len(samplers[name].samples_ms) * samplers[name].runs_per_sample
            stopped[name] = f"stopped early: {ratio:.1f}x the best ({best}) after {runs} runs"
    return stopped


def measure_interleaved(
    sessions: Mapping[str, Session],
    feeds: Mapping[str, Mapping[str, np.ndarray]],
    config: BenchConfig = BenchConfig(),
    failures: Optional[dict[str, str]] = None,
) -> dict[str, Timing]:
    """Time several sessions in alternating blocks until each converges or the shared budget ends.

    With ``failures`` given, a session whose run fails (its worker process crashed, hung or was killed)
    drops out with the reason recorded there and the others go on; without it the error propagates.
    """
    prepare_statistics()  # scipy's import (0.5 s) before any clock starts, never inside a budget
    samplers = _warmed_up(sessions, feeds, config, failures)
    start = time.perf_counter()
    deadline = start + config.budget_s * max(1, len(samplers))
    stopped: dict[str, str] = {}
    interrupted = False
    try:
        _sample_in_blocks(samplers, config, deadline, stopped, failures)
    except KeyboardInterrupt:  # keep what was measured; the caller stores it and re-raises
        interrupted = True
    return _timings(samplers, config, time.perf_counter() - start, interrupted, stopped)


def _warmed_up(sessions: Mapping[str, Session], feeds: Mapping[str, Mapping[str, np.ndarray]], config: BenchConfig,
               failures: Optional[dict[str, str]]) -> dict[str, TimingSampler]:
    """A warmed-up sampler per session, its inputs set (a session that fails here drops out, see failures)."""
    samplers: dict[str, TimingSampler] = {}
    for name, session in sessions.items():
        try:
            session.set_inputs(feeds[name])
            sampler = sampler_for(session)
            sampler.warmup(config)
            samplers[name] = sampler
        except EdgetuneError as exc:
            if failures is None:
                raise
            failures[name] = str(exc)
    return samplers


def _sample_in_blocks(samplers: dict[str, TimingSampler], config: BenchConfig, deadline: float, stopped: dict[str, str],
                      failures: Optional[dict[str, str]]) -> None:
    """Round-robin blocks until every sampler is done or stopped early (why in ``stopped``) or the deadline
    passes; a sampler whose session fails is removed from ``samplers`` (see failures)."""
    pending = list(samplers)
    while pending and time.perf_counter() < deadline:
        for name in list(pending):
            try:
                samplers[name].sample(samplers[name].block_size(config))
            except EdgetuneError as exc:
                if failures is None:
                    raise
                failures[name] = str(exc)
                pending.remove(name)
                del samplers[name]
                continue
            if samplers[name].done(config):
                pending.remove(name)
        for name, why in _hopeless(samplers, pending, config).items():
            stopped[name] = why
            pending.remove(name)


def _timings(samplers: Mapping[str, TimingSampler], config: BenchConfig, wall: float, interrupted: bool,
             stopped: Mapping[str, str]) -> dict[str, Timing]:
    results = {}
    for name, sampler in samplers.items():
        if not sampler.samples_ms:
            if interrupted:
                continue
            sampler.sample(1)  # budget ran out before a block: take one sample
        results[name] = Timing(
            stats=latency_stats(sampler.samples_ms),
            samples_ms=tuple(sampler.samples_ms),
            converged=latency_stats(sampler.samples_ms).ci_rel <= config.ci_rel,
            wall_s=wall,
            interrupted=interrupted,
            runs_per_sample=sampler.runs_per_sample,
            stopped_early=stopped.get(name, ""),
            blocks=tuple(sampler.blocks),
        )
    return results


def measure(session: Session, feeds: Mapping[str, np.ndarray], config: BenchConfig = BenchConfig()) -> Timing:
    """Time one session."""
    return measure_interleaved({"only": session}, {"only": feeds}, config)["only"]


def random_inputs(specs: Sequence[TensorSpec], seed: int = 0, batches: int = 1) -> list[dict[str, np.ndarray]]:
    """Seeded random inputs matching ``specs``: standard normal floats, small non-negative ints."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(batches):
        feed = {}
        for spec in specs:
            dtype = np.dtype(spec.dtype)
            if np.issubdtype(dtype, np.floating):
                feed[spec.name] = rng.standard_normal(spec.shape).astype(dtype)
            elif dtype == np.bool_:
                feed[spec.name] = rng.integers(0, 2, spec.shape).astype(dtype)
            else:
                feed[spec.name] = rng.integers(0, 10, spec.shape).astype(dtype)
        result.append(feed)
    return result
