"""Candidates: a lowering chain plus the runner that measures its artifact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from edgetune.bench import Timing
from edgetune.errors import ConfigError
from edgetune.lowering import Artifact
from edgetune.pipeline._fidelity import Fidelity
from edgetune.targets import Target


@dataclass(frozen=True)
class CandidatePlan:
    """How to produce and run one candidate: lowerings (in order), then a runner."""

    name: str
    runtime: str
    lowerings: tuple[str, ...]
    precision: str = "fp32"
    options: tuple[tuple[str, Any], ...] = ()  # LoweringContext options, as sorted pairs (hashable)

    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)


# Later issues add quantized, pruned and tuned plans here; selection stays the same.
PLANS: tuple[CandidatePlan, ...] = (
    CandidatePlan("onnxruntime-fp32", "onnxruntime", ("onnx",)),
    CandidatePlan("tvm-fp32", "tvm", ("tvm",)),
    CandidatePlan("litert-fp32", "litert", ("tflite",)),
)


def plans_for(target: Target, runtimes: Optional[Sequence[str]] = None) -> list[CandidatePlan]:
    """Plans for the target's runtimes and precisions, optionally restricted to ``runtimes``."""
    if runtimes:
        unknown = sorted(set(runtimes) - set(target.runtimes))
        if unknown:
            raise ConfigError(
                f"target '{target.name}' does not list runtime(s) {', '.join(unknown)}; "
                f"its runtimes are: {', '.join(target.runtimes)}"
            )
    wanted = list(runtimes) if runtimes else list(target.runtimes)
    return [p for p in PLANS if p.runtime in wanted and p.precision in target.precisions]


@dataclass
class CandidateResult:
    """What happened to one candidate: built, checked, measured (or why not)."""

    plan: CandidatePlan
    status: str = "pending"  # ok | failed | skipped | rejected
    reason: str = ""
    artifact: Optional[Artifact] = None
    artifact_hash: Optional[str] = None
    timing: Optional[Timing] = None
    fidelity: Optional[Fidelity] = None
    load_ms: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    rss_delta_mb: Optional[float] = None
    measurement_id: Optional[int] = None

    @property
    def name(self) -> str:
        return self.plan.name

    def to_dict(self) -> dict[str, Any]:
        stats = self.timing.stats.to_dict() if self.timing else None
        return {
            "name": self.plan.name,
            "runtime": self.plan.runtime,
            "lowerings": list(self.plan.lowerings),
            "precision": self.plan.precision,
            "options": self.plan.option_dict(),
            "status": self.status,
            "reason": self.reason,
            "artifact": str(self.artifact.path) if self.artifact else None,
            "artifact_sha256": self.artifact_hash,
            "artifact_size_bytes": self.artifact.size_bytes if self.artifact else None,
            "build_s": self.artifact.build_s if self.artifact else None,
            "load_ms": self.load_ms,
            "peak_rss_mb": self.peak_rss_mb,
            "rss_delta_mb": self.rss_delta_mb,
            "latency": stats,
            "converged": self.timing.converged if self.timing else None,
            "runs_per_sample": self.timing.runs_per_sample if self.timing else None,
            "fidelity": self.fidelity.to_dict() if self.fidelity else None,
            "measurement_id": self.measurement_id,
        }
