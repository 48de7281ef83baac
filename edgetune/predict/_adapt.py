"""Few-shot adaptation: a profile taken on another machine, corrected for this one from a few networks.

A full profile takes half an hour of a quiet machine. A profile taken on another CPU of the same
runtime already knows which kernels exist, how they fuse and how their costs scale with shape; what
differs here is mostly how fast each *kind* of kernel runs (AVX-512 against AVX2 speeds convs far
more than copies). So ``edgetune profile --adapt`` times a fixed set of reference networks here
(``_references``; at most 20, about 3 minutes on 2 cores), splits each prediction of the source
profile into kernel groups, and fits one multiplier per group and one for the per-call cost:

    measured = call x overhead + sum over groups g of m_g x (the source's predicted ms of group g)

by least squares on relative error, each multiplier pulled towards one common factor (ridge; its
strength chosen by leave-one-out error), so a group few references contain stays near the common
speed-up. The leave-one-out error is the adapted profile's held-out error. HELP (NeurIPS 2021) adapts
with ~10 measured networks the same way in spirit: a few measurements here, the rest transferred.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgetune.errors import ConfigError
from edgetune.predict._base import LatencyEstimate, ProfileError
from edgetune.predict._measure import GraphMeasurer
from edgetune.predict._references import REFERENCE_COUNT, measure_references, reference_config, reference_networks, references_document
from edgetune.targets import Target

# kernel groups that get a multiplier each (by the kernel's head kind); "call" is the per-call cost
GROUPS: dict[str, tuple[str, ...]] = {
    "conv": ("conv",), "dwconv": ("dwconv",), "fc": ("fc",), "pool": ("maxpool", "avgpool", "gap"),
    "elementwise": ("add", "mul", "scale", "bn", "relu", "relu6", "hswish", "sigmoid", "hsigmoid", "swish", "softmax"),
    "movement": ("concat", "transpose", "slice", "pad", "resize", "other"),
}
CALL = "call"
_GROUP_OF = {kind: group for group, kinds in GROUPS.items() for kind in kinds}
_LAMBDAS = (1e-4, 1e-3, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def group_of(kernel_kind: str) -> str:
    """The adaptation group of a kernel kind ("conv+bn+relu" -> "conv")."""
    return _GROUP_OF.get(kernel_kind.split("+")[0], "movement")


def group_shares(estimate: LatencyEstimate) -> dict[str, float]:
    """ms of a prediction per group, with the per-call cost (the total less the kernels) as CALL."""
    out = {g: 0.0 for g in (*GROUPS, CALL)}
    for k in estimate.kernels:
        out[group_of(k.kind)] += k.latency_ms
    # may be slightly negative: an end-to-end model fitted on profiler node times can take a little back
    out[CALL] = estimate.total_ms - sum(k.latency_ms for k in estimate.kernels)
    return out


@dataclass(frozen=True)
class MachineCorrection:
    """Multipliers on a profile's predictions for this machine (per group; 1 where absent) and a drift factor."""

    multipliers: dict[str, float] = field(default_factory=dict)
    drift: float = 1.0
    provenance: dict[str, Any] = field(default_factory=dict)  # shown with every prediction it corrects

    def factor(self, group: str) -> float:
        return float(self.multipliers.get(group, 1.0)) * self.drift

    def with_drift(self, drift: float) -> "MachineCorrection":
        return replace(self, drift=float(drift))

    def apply(self, estimate: LatencyEstimate) -> LatencyEstimate:
        """The estimate with every kernel (and the per-call cost) scaled by its group's factor."""
        kernels = tuple(replace(k, latency_ms=k.latency_ms * self.factor(group_of(k.kind))) for k in estimate.kernels)
        call = group_shares(estimate)[CALL] * self.factor(CALL)
        total = call + sum(k.latency_ms for k in kernels)
        ratio = total / estimate.total_ms if estimate.total_ms > 0 else 1.0
        extra = {**estimate.extra, "overhead_ms": call, "machine_correction": self.provenance}
        return replace(estimate, total_ms=total, low_ms=estimate.low_ms * ratio, high_ms=estimate.high_ms * ratio,
                       kernels=kernels, extra=extra)


def _solve(parts: np.ndarray, measured: np.ndarray, lam: float) -> np.ndarray:
    """Non-negative multipliers minimising relative error, each pulled towards the common factor."""
    from scipy.optimize import nnls

    rel = parts / measured[:, None]
    common = float(np.sum(rel.sum(axis=1)) / max(np.sum(rel.sum(axis=1) ** 2), 1e-12))
    used = np.abs(parts).sum(axis=0) > 0
    design = np.vstack([rel, math.sqrt(lam) * np.eye(parts.shape[1])])
    target = np.concatenate([np.ones(len(measured)), math.sqrt(lam) * np.full(parts.shape[1], common)])
    coef, _ = nnls(design, target)
    coef[~used] = common  # a group no reference contains: the common factor
    return coef


def _loo_errors(parts: np.ndarray, measured: np.ndarray, lam: float) -> np.ndarray:
    errors = np.empty(len(measured))
    for i in range(len(measured)):
        keep = np.arange(len(measured)) != i
        coef = _solve(parts[keep], measured[keep], lam)
        errors[i] = float(parts[i] @ coef) / measured[i] - 1.0
    return errors


@dataclass(frozen=True)
class FittedCorrection:
    """The fitted multipliers and how well they predict references they were not fitted on."""

    multipliers: dict[str, float]
    ridge: float
    held_out_errors: tuple[float, ...]  # leave-one-out relative error per reference network
    before_errors: tuple[float, ...]  # the source profile's relative error per reference network, uncorrected

    def summary(self) -> dict[str, Any]:
        def stats(errors: Sequence[float]) -> dict[str, float]:
            e = np.abs(np.asarray(errors))
            return {"within_10pct": round(float(np.mean(e <= 0.10)), 4), "median_abs_error": round(float(np.median(e)), 4),
                    "rmspe": round(float(np.sqrt(np.mean(e ** 2))), 4)}
        return {"multipliers": {k: round(v, 4) for k, v in self.multipliers.items()}, "ridge": self.ridge,
                "held_out": {**stats(self.held_out_errors), "method": "leave-one-out over the reference networks"},
                "source_profile_uncorrected": stats(self.before_errors)}


def fit_correction(estimates: Sequence[LatencyEstimate], measured_ms: Sequence[float]) -> FittedCorrection:
    """Per-group multipliers that map the source profile's predictions to ``measured_ms`` (see the module)."""
    names = [*GROUPS, CALL]
    parts = np.array([[group_shares(e)[g] for g in names] for e in estimates])
    measured = np.asarray(measured_ms, dtype=float)
    if len(measured) < 3 or np.any(measured <= 0):
        raise ProfileError(f"adaptation needs at least 3 measured reference networks, got {int(np.sum(measured > 0))}")
    scores = {lam: float(np.sqrt(np.mean(_loo_errors(parts, measured, lam) ** 2))) for lam in _LAMBDAS}
    lam = min(scores, key=lambda k: (round(scores[k], 4), -k))  # ties: the stronger pull
    coef = _solve(parts, measured, lam)
    before = parts.sum(axis=1) / measured - 1.0
    return FittedCorrection({g: float(c) for g, c in zip(names, coef)}, lam,
                            tuple(float(e) for e in _loo_errors(parts, measured, lam)), tuple(float(e) for e in before))


def correction_from(data: dict[str, Any], provenance: Optional[dict[str, Any]] = None) -> MachineCorrection:
    """The MachineCorrection an adapted profile file describes."""
    return MachineCorrection({k: float(v) for k, v in data["correction"]["multipliers"].items()}, 1.0,
                             provenance or {"adapted": True, "source_machine": data.get("source_machine"),
                                            "held_out": data["correction"].get("held_out")})


# --- the adapted profile on disk ---------------------------------------------------------------

ADAPTED_DIR = "adapted"


def adapted_path(folder: Path, machine: dict[str, Any]) -> Path:
    """Where the adaptation of the profile in ``folder`` to ``machine`` is kept."""
    from edgetune.predict._machine import machine_slug

    return Path(folder) / ADAPTED_DIR / f"{machine_slug(machine)}.json"


def load_adapted(folder: Path, machine: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The adapted profile of ``folder`` for ``machine``, or None when there is none."""
    from edgetune.predict._base import ProfileError

    path = adapted_path(folder, machine)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        data["correction"]["multipliers"]  # noqa: B018 - the one key every use needs
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ProfileError(f"{path} is not an adapted profile; delete it and re-run `edgetune profile --adapt`") from None
    return data


@dataclass(frozen=True)
class AdaptResult:
    """What ``adapt_profile`` wrote: the file, where the source profile was taken, and the fit."""

    path: Path
    source_machine: Optional[dict[str, Any]]
    machine: dict[str, Any]
    references: int
    measure_s: float
    fitted: FittedCorrection


def adapt_profile(target: Target, runtime: str = "onnxruntime", budget_min: float = 3.0,
                  profiles_dir: Optional[Path] = None, measurer: Optional[GraphMeasurer] = None,
                  progress: Callable[[str], None] = lambda _m: None, count: int = REFERENCE_COUNT) -> AdaptResult:
    """Adapt ``target``/``runtime``'s profile (taken on another machine) to this one; see the module.

    Times ``count`` reference networks here in about ``budget_min`` minutes at the profile's thread
    count and writes ``<profile>/adapted/<machine>.json`` (source machine, the references and their
    latencies, the fitted multipliers and their held-out error), which ``predictor_for`` then applies.
    """
    from edgetune.predict._machine import current_machine, profile_machine
    from edgetune.predict._predictors import KernelPredictor
    from edgetune.predict._profile import profile_folder

    if budget_min <= 0:
        raise ConfigError(f"adaptation budget must be positive, got {budget_min} minutes")
    folder = profile_folder(target.name, runtime, profiles_dir)
    if not (folder / "metadata.json").exists():
        raise ProfileError(f"no {target.name}/{runtime} profile to adapt in {folder}; put one taken on another machine "
                           f"there, or take one here with `edgetune profile --target {target.name} --runtime {runtime}`")
    source = KernelPredictor(folder)
    graphs = reference_networks(count)
    own = measurer is None
    measurer = measurer or GraphMeasurer(target, runtime, source.threads, interleave=4,
                                         config=reference_config(budget_min * 60.0, len(graphs)))
    try:
        if measurer.threads != source.threads:
            raise ConfigError(f"the profile predicts {source.threads}-thread latencies; adapt it at {source.threads} "
                              f"thread(s), not {measurer.threads}")
        progress(f"timing {len(graphs)} reference networks, two passes")
        started = time.perf_counter()
        records, stopped = measure_references(measurer.measure, graphs)
        measure_s = time.perf_counter() - started
        libraries = measurer.versions()
    finally:
        if own:
            measurer.close()
    if stopped:
        raise KeyboardInterrupt
    kept = {r["name"] for r in records}
    fitted = fit_correction(source.predict_many([g for g in graphs if g.name in kept]), [r["latency_ms"] for r in records])
    machine = current_machine()
    document = {"schema": 1, "kind": "adapted profile", "target": target.name, "runtime": runtime,
                "source_profile": str(folder), "source_created": source.metadata.get("created"),
                "source_machine": profile_machine(source.metadata), "machine": machine,
                "threads": source.threads, "libraries": libraries, "source_libraries": source.metadata.get("versions", {}),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "measure_s": round(measure_s, 1), "correction": fitted.summary(),
                "references": references_document(records, machine, source.threads),
                "note": "predicted ms here = multiplier of the kernel's group x the source profile's prediction "
                        "(call: the per-call cost); fitted on the reference networks timed here, leave-one-out error"}
    path = adapted_path(folder, machine)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return AdaptResult(path, document["source_machine"], machine, len(records), measure_s, fitted)
