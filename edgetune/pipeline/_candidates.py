"""Candidates: a lowering chain plus the runner that measures its artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from edgetune.bench import Timing
from edgetune.bench._layers import LayerProfile
from edgetune.errors import ConfigError
from edgetune.lowering import Artifact, NamedOptions, lowering_registry
from edgetune.pipeline._fidelity import Fidelity
from edgetune.pipeline._options import CompileOptions
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

    @property
    def exact(self) -> bool:
        """fp32 and every lowering keeps the model's outputs (not pruned): must match the reference within the
        numeric tolerance."""
        return self.precision == "fp32" and all(
            lowering_registry[name].preserves_outputs for name in self.lowerings if name in lowering_registry)


@dataclass(frozen=True)
class _Base:
    runtime: str
    precision: str
    lowerings: tuple[str, ...]
    suffix: str = ""


def _base_plans() -> tuple[_Base, ...]:
    """runtime x precision, from every lowering's variants in registry order; prune ratios multiply these."""
    return tuple(_Base(v.runtime, v.precision, (*v.after, cls.name), v.suffix)
                 for cls in lowering_registry.values() for v in cls.variants)


BASE_PLANS: tuple[_Base, ...] = _base_plans()  # those of the lowerings registered at import
PLANS = BASE_PLANS  # kept for callers that list what exists


def _expand(base: _Base, options: CompileOptions) -> list[CandidatePlan]:
    """The plans of one base: its chain's lowerings pick the variants, source steps (pruning) multiply them."""
    name = "-".join(p for p in (base.runtime, base.precision, base.suffix) if p)
    common = options.lowering_options()
    variants: list[NamedOptions] = [(name, {})]
    for lowering in base.lowerings:
        variants = lowering_registry[lowering].expand(variants, options)
    steps = [(cls.name, step) for cls in lowering_registry.values() for step in cls.prefixes(options)]
    plans = []
    for variant_name, extra in variants:
        plans.append(CandidatePlan(variant_name, base.runtime, base.lowerings, base.precision,
                                   tuple(sorted({**common, **extra}.items()))))
        for step_name, (suffix, step_options) in steps:
            plans.append(CandidatePlan(
                f"{variant_name}-{suffix}", base.runtime, (step_name, *base.lowerings), base.precision,
                tuple(sorted({**common, **extra, **step_options}.items())),
            ))
    return plans


def plans_for(target: Target, runtimes: Optional[Sequence[str]] = None,
              options: Optional[CompileOptions] = None) -> list[CandidatePlan]:
    """Plans for the target's runtimes and precisions, optionally restricted to ``runtimes``."""
    options = options or CompileOptions()
    if runtimes:
        unknown = sorted(set(runtimes) - set(target.runtimes))
        if unknown:
            raise ConfigError(
                f"target '{target.name}' does not list runtime(s) {', '.join(unknown)}; "
                f"its runtimes are: {', '.join(target.runtimes)}"
            )
    wanted = list(runtimes) if runtimes else list(target.runtimes)
    plans: list[CandidatePlan] = []
    for base in _base_plans():
        if base.runtime not in wanted or base.precision not in target.precisions:
            continue
        if not set(base.lowerings) <= set(lowering_registry):  # a variant after a lowering not registered
            continue
        plans.extend(_expand(base, options))
    return plans


@dataclass
class CandidateResult:
    """What happened to one candidate: built, checked, measured (or why not)."""

    plan: CandidatePlan
    status: str = "pending"  # ok | failed | skipped | rejected | interrupted
    reason: str = ""
    artifact: Optional[Artifact] = None
    artifact_hash: Optional[str] = None
    timing: Optional[Timing] = None
    fidelity: Optional[Fidelity] = None
    accuracy: Optional[dict[str, Any]] = None
    load_ms: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    rss_delta_mb: Optional[float] = None
    measurement_id: Optional[int] = None
    details: dict[str, Any] = field(default_factory=dict)
    measurement: str = ""  # how it was timed: "isolated worker, 2 thread(s), cpus 0-1", "timed by the device", ...
    layers: Optional[LayerProfile] = None  # --per-layer: the runtime's own per-layer profile

    @property
    def name(self) -> str:
        return self.plan.name

    def to_dict(self) -> dict[str, Any]:
        stats = self.timing.stats.to_dict() if self.timing else None
        per_layer = {"per_layer": self.layers.to_dict()} if self.layers is not None else {}
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
            "build_details": self.details,
            "load_ms": self.load_ms,
            "peak_rss_mb": self.peak_rss_mb,
            "rss_delta_mb": self.rss_delta_mb,
            "latency": stats,
            "converged": self.timing.converged if self.timing else None,
            "runs_per_sample": self.timing.runs_per_sample if self.timing else None,
            "stopped_early": self.timing.stopped_early or None if self.timing else None,
            "measurement_mode": self.measurement or None,
            "fidelity": self.fidelity.to_dict() if self.fidelity else None,
            "accuracy": self.accuracy,
            "measurement_id": self.measurement_id,
            **per_layer,
        }


def measurement_modes(results: Sequence[CandidateResult]) -> str:
    """How the timed candidates were measured, each distinct way once (for tables and summaries)."""
    modes = sorted({r.measurement for r in results if r.measurement and r.timing is not None})
    return "; ".join(modes) + (", one candidate running at a time" if any("worker" in m for m in modes) else "")
