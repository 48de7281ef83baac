"""One measured kernel of a profile: a row of ``measurements.csv`` (``_profile_store``), typed."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from edgetune.predict._fusion import FusionRules, split_kernels
from edgetune.predict._graph import Graph, graph_from_dict, graph_to_dict
from edgetune.predict._hardware import ProfileHardware
from edgetune.predict._profile_store import COLUMNS


@dataclass
class KernelRow:
    """A kernel's timing, with its graph kept as JSON so that regressors can be refit with new features."""

    id: float
    head: str
    kind: str
    graph: str  # the kernel's graph, compact JSON
    macs: float
    raw_ms: float  # median of the samples
    ci_low_ms: float
    ci_high_ms: float
    samples: float
    converged: float
    min_ms: float
    reference_ms: Optional[float]  # the reference graph timed in the same group (kept for analysis)
    latency_ms: float  # fastest run minus the per-call overhead: what the regressors learn
    time: float
    _features: Optional[list[float]] = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def measured(cls, index: int, graph: Graph, timing: Any, latency_ms: float, rules: FusionRules) -> "KernelRow":
        """The row of a kernel just timed (``timing``: a GraphTiming)."""
        kernel = split_kernels(graph, rules)[0]
        return cls(index, kernel.head.kind, kernel.kind, json.dumps(graph_to_dict(graph), separators=(",", ":")),
                   kernel.head.macs, timing.median_ms, timing.ci_low_ms, timing.ci_high_ms, timing.samples,
                   int(timing.converged), timing.min_ms, timing.reference_ms, latency_ms, round(time.time(), 1))

    @classmethod
    def from_csv(cls, row: dict[str, Any]) -> "KernelRow":
        """A row as ``ProfileStore.rows`` reads it (numbers as floats; an empty reference as 0)."""
        return cls(**{name: row[name] for name in COLUMNS if name != "reference_ms"}, reference_ms=row["reference_ms"] or None)

    def to_csv(self) -> dict[str, Any]:
        """The row as ``ProfileStore.append`` writes it (no reference time: an empty cell)."""
        return {name: getattr(self, name) for name in COLUMNS} | {"reference_ms": self.reference_ms or ""}

    def features(self, rules: FusionRules, hardware: ProfileHardware) -> list[float]:
        """The regressors' features of this kernel (computed once: parsing the graph is the slow part)."""
        if self._features is None:
            self._features = hardware.features(split_kernels(graph_from_dict(json.loads(self.graph)), rules)[0])
        return self._features
