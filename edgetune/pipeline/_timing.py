"""The timing rounds of one evaluation: the loaded candidates timed interleaved, each round after the
first on fresh loads, every session's samples pooled."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from edgetune.bench import BenchConfig, CpuShares, MachineWatch, Timing, WorkerSession, latency_stats, measure_interleaved
from edgetune.errors import EdgetuneError
from edgetune.pipeline._candidates import CandidateResult
from edgetune.pipeline._rows import EvaluationRows
from edgetune.runners import Runner, Session


class SessionTiming:
    """Loaded sessions timed interleaved, each round (after the first) on fresh loads; a session whose
    worker fails drops out with the reason in ``failed``."""

    def __init__(self, sessions: dict[str, Session], runners: dict[str, Runner], by_name: dict[str, CandidateResult],
                 threads: int, config: BenchConfig, say: Callable[[str], None]) -> None:
        self.sessions, self.runners, self.by_name = sessions, runners, by_name
        self.threads, self.config, self.say = threads, config, say
        self.pooled: dict[str, list[float]] = {name: [] for name in sessions}
        self.failed: dict[str, str] = {}
        self.noise: list[CpuShares] = []  # per round: the share of the machine that was not ours

    def run(self, count: int, feed: dict[str, np.ndarray], rows: EvaluationRows) -> bool:
        """Up to ``count`` rounds, each candidate's results and rows updated after each; True when Ctrl-C stopped them."""
        interrupted = False
        for index in range(count if self.sessions else 0):
            timings = self.round(index, count, feed)
            interrupted = any(t.interrupted for t in timings.values())
            for name, timing in timings.items():
                take_timing(self.by_name[name], timing, index, self.pooled[name], self.config, interrupted)
                rows.store_session(self.by_name[name], timing, index, count)
            for name, why in self.failed.items():
                if self.by_name[name].status != "failed":
                    self.by_name[name].status, self.by_name[name].reason = "failed", why
                    rows.store_result(self.by_name[name])
            if interrupted:
                break
        return interrupted

    def round(self, index: int, count: int, feed: dict[str, np.ndarray]) -> dict[str, Timing]:
        if index > 0:  # a fresh load per session: load-to-load variation is part of the noise a gate must see
            self._reload()
        self.say(f"timing {len(self.sessions)} candidate(s) interleaved, up to {self.config.budget_s:g} s each"
                 + (f" (session {index + 1}/{count})" if count > 1 else ""))
        failures: dict[str, str] = {}
        watch = MachineWatch(s.info.pid for s in self.sessions.values() if isinstance(s, WorkerSession))
        timings = measure_interleaved(self.sessions, {n: feed for n in self.sessions}, self.config, failures)
        shares = watch.shares()
        if shares is not None:
            self.noise.append(shares)
        for name, why in failures.items():
            self.failed[name] = why
            self.sessions.pop(name).close()
        return timings

    def _reload(self) -> None:
        for name in list(self.sessions):
            self.sessions.pop(name).close()
            artifact = self.by_name[name].artifact
            assert artifact is not None
            try:
                self.sessions[name] = self.runners[self.by_name[name].plan.runtime].load(artifact.path, self.threads)
            except EdgetuneError as exc:
                self.failed[name] = str(exc)

    def noise_summary(self) -> dict[str, Any]:
        """How much of the machine was not ours while timing: the worst round's shares and its warning."""
        return {"steal_share": max((n.steal for n in self.noise), default=None),
                "other_processes_share": max((n.others for n in self.noise), default=None),
                "warning": next((n.warning() for n in self.noise if n.warning()), "")}


def take_timing(result: CandidateResult, timing: Timing, index: int, pooled: list[float], config: BenchConfig,
                interrupted: bool) -> None:
    pooled.extend(timing.samples_ms)
    result.timing = timing if index == 0 else pool(result.timing, timing, pooled, config.ci_rel)
    if interrupted:
        result.status, result.reason = "interrupted", "timing was interrupted (Ctrl-C); samples so far are kept"


def pool(first: Optional[Timing], latest: Timing, samples: list[float], ci_rel: float) -> Timing:
    """Statistics over every session's samples (what a table shows after several sessions)."""
    stats = latency_stats(samples)
    return Timing(stats, tuple(samples), stats.ci_rel <= ci_rel, latest.wall_s + (first.wall_s if first else 0.0),
                  latest.interrupted, latest.runs_per_sample, latest.stopped_early, (first.blocks if first else ()) + latest.blocks)
