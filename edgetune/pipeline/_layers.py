"""`--per-layer`: each timed candidate's layers, from its runtime's own profiler (``Runner.node_times``)."""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from edgetune.bench import isolated
from edgetune.bench._layers import LayerProfile, layer_profile
from edgetune.errors import EdgetuneError
from edgetune.pipeline._candidates import CandidateResult
from edgetune.runners import runner_for
from edgetune.targets import Target

PROFILED_RUNS = 40
PROFILED_WARMUP = 10
_TIMED = ("ok", "rejected", "interrupted")  # candidates that were built, loaded and timed


def profile_candidate(result: CandidateResult, target: Target, threads: int, feeds: Mapping[str, np.ndarray],
                      rpc_tracker: Optional[str] = None, runs: int = PROFILED_RUNS,
                      warmup: int = PROFILED_WARMUP) -> LayerProfile:
    """The per-layer profile of one built candidate; a runtime without a profiler gets a profile that says why."""
    assert result.artifact is not None
    runtime = result.plan.runtime
    end_to_end = result.timing.stats.median_ms if result.timing else None
    try:
        runner = isolated(runner_for(runtime, target, rpc_tracker))  # profiled alone, in a worker process
        nodes = runner.node_times(result.artifact.path, threads, feeds, runs, warmup)
    except EdgetuneError as exc:
        return layer_profile(result.name, runtime, None, end_to_end, note=f"per-layer profiling failed: {exc}")
    note = "" if nodes is not None else str(getattr(runner, "no_node_times", "") or
                                            f"{getattr(runner, 'name', runtime)} has no per-layer profiler in edgetune")
    return layer_profile(result.name, runtime, nodes, end_to_end, runs=runs, note=note)


def profile_layers(results: Sequence[CandidateResult], target: Target, threads: int, feeds: Mapping[str, np.ndarray],
                   rpc_tracker: Optional[str] = None, progress: Optional[Callable[[str], None]] = None,
                   only: Optional[str] = None) -> list[LayerProfile]:
    """Profile every timed candidate (or the one named ``only``), one after another; sets ``result.layers``."""
    say = progress or (lambda _msg: None)
    profiles = []
    for result in results:
        if result.status not in _TIMED or result.artifact is None or (only is not None and result.name != only):
            continue
        say(f"per-layer profile of {result.name}")
        result.layers = profile_candidate(result, target, threads, feeds, rpc_tracker)
        profiles.append(result.layers)
    return profiles
