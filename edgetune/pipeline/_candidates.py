"""Candidates: a lowering chain plus the runner that measures its artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from edgetune.bench import Timing
from edgetune.bench._layers import LayerProfile
from edgetune.errors import ConfigError
from edgetune.lowering import Artifact, lowering_registry
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
        """fp32 and unpruned: must match the reference within the numeric tolerance."""
        return self.precision == "fp32" and "prune" not in self.lowerings


@dataclass(frozen=True)
class _Base:
    runtime: str
    precision: str
    lowerings: tuple[str, ...]
    suffix: str = ""


# runtime x precision; pruning levels multiply these. Lowerings not registered here are left out.
BASE_PLANS: tuple[_Base, ...] = (
    _Base("onnxruntime", "fp32", ("onnx",)),
    _Base("onnxruntime", "int8", ("onnx", "ort-int8-static"), "static"),
    _Base("onnxruntime", "int8", ("onnx", "ort-int8-dynamic"), "dynamic"),
    _Base("tvm", "fp32", ("tvm",)),
    _Base("tvm", "fp32", ("tvm-tuned",), "tuned"),
    _Base("openvino", "fp32", ("openvino",)),
    _Base("openvino", "int8", ("openvino-nncf-int8",), "nncf"),
    _Base("litert", "fp32", ("tflite",)),
    _Base("litert", "fp16", ("tflite-fp16",)),
    _Base("litert", "int8", ("tflite-int8",)),
    _Base("litert", "int8", ("tflite-int8-qat",), "qat"),  # only with --train; see _qat.py for when
    # simulated devices: Vela quantizes a PyTorch model through tflite-int8 itself (or takes an int8 .tflite)
    _Base("vela", "int8", ("vela",)),
    _Base("scalesim", "int8", ("onnx", "ort-int8-static", "scalesim")),
    _Base("tflm", "int8", ("tflm",)),
)
PLANS = BASE_PLANS  # kept for callers that list what exists


def _expand(base: _Base, options: CompileOptions) -> list[CandidatePlan]:
    name = "-".join(p for p in (base.runtime, base.precision, base.suffix) if p)
    common = {"seed": options.seed, "calib_samples": options.calib_samples, "train_epochs": options.train_epochs,
              "max_accuracy_drop": options.max_accuracy_drop}
    if "tflite-int8-qat" in base.lowerings and (not options.train or options.qat == "never"):
        return []
    if "tvm-tuned" in base.lowerings:
        if options.tune_trials <= 0:
            return []
        common["tune_trials"] = options.tune_trials
        if options.tuning_records is not None:
            common["tuning_records"] = options.tuning_records
    variants: list[tuple[str, dict[str, Any]]] = [(name, {})]
    if "openvino-nncf-int8" in base.lowerings and options.eval:
        # NNCF's accuracy-aware variant needs labelled validation data: tried beside the plain one
        variants.append((f"{name}-accuracy-aware", {"accuracy_aware": True}))
    if "ort-int8-static" in base.lowerings:
        variants = [(f"{name}-{m}" if len(options.calib_methods) > 1 else name, {"calib_method": m})
                    for m in options.calib_methods]
    plans = []
    for variant_name, extra in variants:
        plans.append(CandidatePlan(variant_name, base.runtime, base.lowerings, base.precision,
                                   tuple(sorted({**common, **extra}.items()))))
        for ratio in options.prune_ratios:
            plans.append(CandidatePlan(
                f"{variant_name}-pruned{round(ratio * 100)}", base.runtime, ("prune", *base.lowerings), base.precision,
                tuple(sorted({**common, **extra, "prune_ratio": ratio}.items())),
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
    for base in BASE_PLANS:
        if base.runtime not in wanted or base.precision not in target.precisions:
            continue
        if not set(base.lowerings) <= set(lowering_registry):
            continue
        if (options.prune_ratios or options.prune_to_latency_ms) and "prune" not in lowering_registry:
            raise ConfigError("pruning was asked for but no 'prune' lowering is installed")
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
