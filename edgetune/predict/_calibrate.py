"""Drift calibration: re-time a few reference networks and rescale predictions for today's speed.

The same VM runs 10-20% faster or slower from one hour or day to the next (a neighbour's load,
the host's clocks). A profile (or adapted profile) keeps its reference networks' latencies
(``_references``); ``calibrate`` re-times the quickest of them in about ten seconds, in three passes of
alternating order, and takes the median ratio now/then (each network's fastest pass, as the references
were stored) as the machine's drift, and rescales every prediction by it. A slow window of a few
seconds (a neighbour's burst) lands in one pass and not the others: it does not become the day's speed,
and the message says the speed moved while calibrating. A profile's
references are timed at its end, while its regressors describe the machine's median speed while
profiling (``_drift``): ``speed_factor`` in references.json (their stored latencies over the profile's
predictions of them, median) turns "slower than the references" into "slower than the profile". Whether the
rescale means anything is judged against the noise: the spread of the ratios over the networks
(a robust standard error) and how far the references' own two passes disagreed when stored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from edgetune.bench import BenchConfig
from edgetune.predict._base import ProfileError
from edgetune.predict._measure import GraphMeasurer
from edgetune.predict._references import REFERENCES_FILE, measure_references, read_references, reference_graphs
from edgetune.targets import Target

CALIBRATION_NETWORKS = 6
CALIBRATION_PASSES = 3
_MIN_NOISE = 0.02  # below 2% a rescale is never called significant: timer and scheduling jitter


@dataclass(frozen=True)
class Calibration:
    """Today's speed against the stored references: factor > 1 means slower now."""

    factor: float
    noise: float  # relative; the rescale is significant when |factor - 1| exceeds it
    networks: int
    seconds: float
    ratios: tuple[float, ...]
    stored_speed: float = 1.0  # the machine's speed when the references were stored, against the profile's
    pass_factors: tuple[float, ...] = ()  # each pass's own median ratio, in the order they ran

    @classmethod
    def from_ratios(cls, ratios: Sequence[float], noise: float, seconds: float, stored_speed: float = 1.0,
                    pass_factors: Sequence[float] = ()) -> "Calibration":
        """The drift from each reference's now/stored latency ratio: their median, times ``stored_speed``."""
        return cls(float(np.exp(np.median(np.log(ratios)))) * stored_speed, noise, len(ratios), seconds,
                   tuple(float(r) for r in ratios), stored_speed, tuple(float(f) for f in pass_factors))

    @property
    def significant(self) -> bool:
        return abs(math.log(self.factor)) > math.log1p(self.noise)

    @property
    def steady(self) -> bool:
        """Whether the passes read the same speed within the noise: False when it moved while calibrating."""
        if len(self.pass_factors) < 2:
            return True
        return math.log(max(self.pass_factors) / min(self.pass_factors)) <= math.log1p(self.noise)

    @property
    def uncertainty(self) -> float:
        """How far above the factor kept today's speed may be (relative; what a calibrated prediction's interval adds
        above, the noise below): the noise, or, when the speed moved while calibrating, how far its slowest pass read
        above the factor."""
        if self.steady:
            return self.noise
        return max(self.noise, max(self.pass_factors) * self.stored_speed / self.factor - 1.0)

    def message(self) -> str:
        direction = "slower" if self.factor > 1 else "faster"
        change = abs(self.factor - 1.0)
        verdict = ("beyond the noise: predictions rescaled" if self.significant
                   else "within the noise: rescaled anyway, but read it as no measurable drift")
        stored = (f"the profile predicts (its references were timed at {self.stored_speed:.2f}x its predictions)"
                  if self.stored_speed != 1.0 else "when they were stored")
        moved = ("" if self.steady else "; the speed moved while calibrating (passes read "
                 + ", ".join(f"{f * self.stored_speed:.2f}x" for f in self.pass_factors) + "), each network's fastest pass counts "
                 f"and predictions carry +-{self.uncertainty:.0%} for today's speed")
        return (f"calibrated on {self.networks} reference networks in {self.seconds:.1f} s: this machine runs "
                f"{change:.1%} {direction} than {stored} (noise +-{self.noise:.1%}); {verdict}{moved}")

    def to_dict(self) -> dict[str, Any]:
        return {"factor": round(self.factor, 4), "noise": round(self.noise, 4), "significant": self.significant,
                "networks": self.networks, "seconds": round(self.seconds, 2), "ratios": [round(r, 4) for r in self.ratios],
                "stored_speed": round(self.stored_speed, 4), "pass_factors": [round(f, 4) for f in self.pass_factors],
                "steady": self.steady, "uncertainty": round(self.uncertainty, 4)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibration":
        return cls(float(data["factor"]), float(data["noise"]), int(data["networks"]), float(data["seconds"]),
                   tuple(float(r) for r in data["ratios"]), float(data.get("stored_speed", 1.0)),
                   tuple(float(f) for f in data.get("pass_factors", ())))


def stored_references(folder: Path, adapted: Optional[dict[str, Any]], machine: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The reference latencies for ``machine``: the adapted profile's, else the profile's own if taken here."""
    from edgetune.predict._machine import same_machine

    if adapted is not None:
        return adapted.get("references")
    document = read_references(Path(folder) / REFERENCES_FILE)
    if document is not None and same_machine(document.get("machine", {}), machine):
        return document
    return None


def calibration_config(budget_s: float, networks: int) -> BenchConfig:
    """Short sessions (>= 30 runs each) so ``networks`` fit in ``budget_s`` with their worker start-ups."""
    per_session = max(0.1, min(1.0, 0.5 * budget_s / max(networks, 1)))
    return BenchConfig(warmup_runs=5, warmup_s=0.02, min_repeats=30, budget_s=per_session, ci_rel=0.01)


def calibrate(references: dict[str, Any], target: Target, runtime: str, threads: int, budget_s: float = 10.0,
              measurer: Optional[GraphMeasurer] = None, count: int = CALIBRATION_NETWORKS) -> Calibration:
    """Re-time the ``count`` quickest stored references in passes (about ``budget_s`` seconds in all); the drift."""
    stored = sorted(references.get("networks", []), key=lambda r: r["latency_ms"])[:count]
    if len(stored) < 2:
        raise ProfileError("fewer than 2 stored reference networks to calibrate against; "
                           f"run `edgetune profile --target {target.name} --runtime {runtime} --adapt`")
    graphs = reference_graphs({"networks": stored})
    own = measurer is None
    measurer = measurer or GraphMeasurer(target, runtime, threads, config=calibration_config(budget_s / CALIBRATION_PASSES, len(graphs)),
                                         interleave=len(graphs))
    started = time.perf_counter()
    try:
        records, stopped = measure_references(measurer.measure, graphs, passes=CALIBRATION_PASSES)
    finally:
        if own:
            measurer.close()
    if stopped:
        raise KeyboardInterrupt
    kept = [(record, stored[record["index"]]["latency_ms"]) for record in records]
    if len(kept) < 2:
        raise ProfileError(f"the reference networks did not run on {target.name}/{runtime}; cannot calibrate")
    logs = np.log([record["latency_ms"] / then for record, then in kept])
    spread = 1.4826 * float(np.median(np.abs(logs - np.median(logs)))) / math.sqrt(len(logs))  # robust standard error
    noise = max(2.0 * spread, float(references.get("pass_disagreement", 0.0)), _MIN_NOISE)
    passes = [float(np.exp(np.median(np.log([record["passes_ms"][i] / then for record, then in kept]))))
              for i in range(CALIBRATION_PASSES)]
    return Calibration.from_ratios([float(np.exp(v)) for v in logs], noise, time.perf_counter() - started,
                                   float(references.get("speed_factor", 1.0)), passes)
