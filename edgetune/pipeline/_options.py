"""Compile options with named presets: `--preset thorough` beats ten flags."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal, Optional

from edgetune.errors import ConfigError
from edgetune.lowering._quantize_ort import CALIBRATION_METHODS

Objective = Literal["latency", "size", "memory"]
OBJECTIVES = ("latency", "size", "memory")
# auto: quantization-aware training only where post-training int8 missed the accuracy budget
QatMode = Literal["auto", "always", "never"]
QAT_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class CompileOptions:
    """What to try and how to judge it. Validated on construction."""

    calib: Optional[str] = None  # .npz, image folder or built-in dataset name
    eval: Optional[str] = None  # labelled data for top-1 accuracy
    train: Optional[str] = None  # labelled data for fine-tuning after pruning
    max_accuracy_drop: float = 1.0  # percentage points
    calib_methods: tuple[str, ...] = ("minmax",)
    calib_samples: int = 128
    prune_ratios: tuple[float, ...] = ()
    prune_to_latency_ms: Optional[float] = None  # search the prune ratio until the target meets this
    qat: QatMode = "auto"
    train_epochs: int = 3
    tune_trials: int = 0
    tuning_records: Optional[str] = None  # a folder: MetaSchedule JSON database read and written (import/export)
    objective: Objective = "latency"
    budget_s: float = 5.0
    eval_samples: int = 500
    seed: int = 0
    # Fresh loads of every candidate, timed interleaved each time and pooled: a single session's
    # median can sit 10-30% off another's on a shared VM, so "thorough" takes three.
    sessions: int = 1

    def __post_init__(self) -> None:
        if self.max_accuracy_drop < 0:
            raise ConfigError(f"--max-accuracy-drop must be >= 0 percentage points, got {self.max_accuracy_drop}")
        unknown = [m for m in self.calib_methods if m not in CALIBRATION_METHODS]
        if unknown or not self.calib_methods:
            raise ConfigError(f"unknown calibration method(s) {unknown}; valid: {', '.join(CALIBRATION_METHODS)}")
        bad = [r for r in self.prune_ratios if not 0 < r < 1]
        if bad:
            raise ConfigError(f"--prune ratios must be between 0 and 1 (exclusive), got {bad}")
        if self.prune_to_latency_ms is not None and not self.prune_to_latency_ms > 0:
            raise ConfigError(f"--prune-to-latency-ms must be a positive number of ms, got {self.prune_to_latency_ms}")
        if self.qat not in QAT_MODES:
            raise ConfigError(f"unknown --qat mode '{self.qat}'; valid: {', '.join(QAT_MODES)}")
        if self.qat == "always" and not self.train:
            raise ConfigError("--qat always needs --train DATA (quantization-aware training fine-tunes on it)")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective '{self.objective}'; valid: {', '.join(OBJECTIVES)}")
        for name in ("calib_samples", "eval_samples", "sessions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.tune_trials < 0 or self.train_epochs < 0:
            raise ConfigError("--tune-trials and --train-epochs must be >= 0")
        if self.budget_s <= 0:
            raise ConfigError(f"--budget-s must be positive, got {self.budget_s}")

    def lowering_options(self) -> dict[str, Any]:
        """The lowering options every candidate's plan carries (and its manifest shows); variants add their own."""
        return {"seed": self.seed, "calib_samples": self.calib_samples, "train_epochs": self.train_epochs,
                "max_accuracy_drop": self.max_accuracy_drop}


PRESETS: dict[str, dict[str, Any]] = {
    # minutes matter: one calibration method, no tuning, short timing
    "fast": {"calib_methods": ("minmax",), "tune_trials": 0, "budget_s": 2.0, "calib_samples": 64},
    "default": {},
    # leave it running: every calibration method, TVM tuning, two pruning levels, longer timing
    "thorough": {"calib_methods": CALIBRATION_METHODS, "tune_trials": 256, "prune_ratios": (0.25, 0.5),
                 "budget_s": 10.0, "calib_samples": 256, "sessions": 3},
}


def options_from(preset: Optional[str] = None, **overrides: Any) -> CompileOptions:
    """Preset values, then explicit overrides (None means "not given")."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; valid presets: {', '.join(PRESETS)}")
    known = {f.name for f in fields(CompileOptions)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown compile option(s): {', '.join(sorted(unknown))}")
    base = replace(CompileOptions(), **PRESETS.get(preset or "default", {}))
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
