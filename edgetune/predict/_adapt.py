"""Few-shot adaptation: a profile taken on another machine, corrected for this one from a few networks.

A full profile takes half an hour of a quiet machine. A profile taken on another CPU of the same
runtime already knows which kernels exist, how they fuse and how their costs scale with shape; what
differs here is how fast each kernel runs, and not by one factor per kind: a compute-bound conv and
a memory-bound one, or a small and a large fully connected layer, move apart (``_residual``). So
``edgetune profile --adapt`` times a fixed set of reference networks here (``_references``; 20, in
passes of alternating order for about 3 minutes on 2 cores) through the runtime's per-node profiler,
and fits, on their few hundred kernels, a residual model of this machine's in-network kernel cost
over the source profile's prediction of it (``_residual.KernelResidual``), then one factor that maps
the corrected networks onto their measured end-to-end latencies (the per-call cost and the
profiler's bookkeeping differ too). Its held-out error is leave-one-network-out over the references.

A runtime without a per-node profiler gives network totals only; there each prediction is split
into kernel groups and one multiplier per group and one for the per-call cost are fitted:

    measured = call x overhead + sum over groups g of m_g x (the source's predicted ms of group g)

by least squares on relative error, each multiplier pulled towards one common factor (ridge; its
strength chosen by leave-one-out error), so a group few references contain stays near the common
speed-up. HELP (NeurIPS 2021) adapts with ~10 measured networks the same way in spirit: a few
measurements here, the rest transferred.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from edgetune.errors import ConfigError
from edgetune.predict._base import KernelEstimate, LatencyEstimate, ProfileError
from edgetune.predict._context import kernel_costs_from_nodes
from edgetune.predict._fusion import Kernel
from edgetune.predict._graph import Graph
from edgetune.predict._hardware import ProfileHardware
from edgetune.predict._measure import GraphMeasurer
from edgetune.predict._references import REFERENCE_COUNT, measure_references, reference_config, reference_networks, references_document
from edgetune.predict._residual import KernelResidual, residual_rows
from edgetune.targets import Target

if TYPE_CHECKING:
    from edgetune.predict._predictors import KernelPredictor

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
    out[CALL] = call_ms(estimate)
    return out


def call_ms(estimate: LatencyEstimate) -> float:
    """A prediction's per-call cost: its total less its kernels. May be slightly negative: an end-to-end
    model fitted on profiler node times can take a little back."""
    return estimate.total_ms - sum(k.latency_ms for k in estimate.kernels)


@dataclass(frozen=True)
class MachineCorrection:
    """A profile's predictions corrected for this machine: per kernel (``residual``) or per group
    (``multipliers``; 1 where absent), times ``scale`` and today's ``drift``."""

    multipliers: dict[str, float] = field(default_factory=dict)
    drift: float = 1.0
    provenance: dict[str, Any] = field(default_factory=dict)  # shown with every prediction it corrects
    residual: Optional[KernelResidual] = None
    scale: float = 1.0
    # what the correction adds to a prediction's 95% interval, relative: the adaptation's held-out error
    # (``spread``) and how well the calibration knows today's speed (``drift_noise``; ``drift_up`` above
    # it, more when the speed moved while calibrating), each added in quadrature to the model's
    spread: float = 0.0
    drift_noise: float = 0.0
    drift_up: float = 0.0

    def factor(self, group: str) -> float:
        return float(self.multipliers.get(group, 1.0)) * self.scale * self.drift

    def correct_kernels(self, split: Sequence[Sequence[Kernel]], latency: dict[tuple[int, int], float],
                        hardware: ProfileHardware) -> dict[tuple[int, int], float]:
        """(graph, kernel) -> ms on this machine, before the end-to-end model adds them up (as is without a residual)."""
        if self.residual is None or not latency:
            return latency
        keys = [(gi, ki) for gi, kernels in enumerate(split) for ki in range(len(kernels))]
        values = self.residual.correct([split[gi][ki] for gi, ki in keys], [latency[key] for key in keys], hardware)
        return {key: float(value) for key, value in zip(keys, values)}

    def with_drift(self, drift: float, noise: float = 0.0, up: float = 0.0) -> "MachineCorrection":
        """Today's speed (``_calibrate``) on top: every prediction times ``drift``, its interval widened by ``noise``
        (and above by ``up``, when larger)."""
        return replace(self, drift=float(drift), drift_noise=float(noise), drift_up=float(max(up, noise)))

    def apply(self, estimate: LatencyEstimate) -> LatencyEstimate:
        """The estimate with every kernel (and the per-call cost) scaled by its group's factor."""
        factors = {g: self.factor(g) for g in (*GROUPS, CALL)}  # a search applies this to thousands of estimates
        kernels = tuple(KernelEstimate(k.kind, k.ops, k.latency_ms * factors[group_of(k.kind)], k.macs, k.estimated)
                        for k in estimate.kernels)
        call = call_ms(estimate) * factors[CALL]
        total = call + sum(k.latency_ms for k in kernels)
        model = (estimate.high_ms - estimate.low_ms) / 2.0 / estimate.total_ms if estimate.total_ms > 0 else 0.0
        below = total * math.sqrt(model ** 2 + self.spread ** 2 + self.drift_noise ** 2)
        above = total * math.sqrt(model ** 2 + self.spread ** 2 + max(self.drift_up, self.drift_noise) ** 2)
        extra = {**estimate.extra, "overhead_ms": call, "machine_correction": self.provenance,
                 "interval_covers": self._covers(estimate.extra.get("interval_covers") or [])}
        return replace(estimate, total_ms=total, low_ms=max(total - below, 0.0), high_ms=total + above,
                       kernels=kernels, extra=extra)

    def _covers(self, model: Sequence[str]) -> list[str]:
        """What a corrected prediction's interval stands for: the model's part, then this correction's."""
        covers = [line for line in model if not line.startswith("not for today's speed") or not self.drift_up]
        if self.spread:
            covers.append(f"this machine's adaptation: +-{self.spread:.0%} (its held-out error on the reference networks)")
        if self.drift_up > self.drift_noise:
            covers.append(f"today's speed: -{self.drift_noise:.1%} to +{self.drift_up:.1%} (it moved while calibrating)")
        elif self.drift_noise:
            covers.append(f"today's speed: +-{self.drift_noise:.1%} (the calibration's noise)")
        return covers


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
    """The fitted correction (per-kernel residual, or group multipliers) and how well it predicts
    references it was not fitted on."""

    multipliers: dict[str, float]  # per group; empty with a residual
    ridge: float
    held_out_errors: tuple[float, ...]  # leave-one-out relative error per reference network
    before_errors: tuple[float, ...]  # the source profile's relative error per reference network, uncorrected
    residual: Optional[KernelResidual] = None
    scale: float = 1.0  # the network factor on top of the residual
    kernel_ratios: dict[str, float] = field(default_factory=dict)  # per group: measured / predicted kernel ms, for the record
    kernels: int = 0  # kernels the residual was fitted on

    def summary(self) -> dict[str, Any]:
        def stats(errors: Sequence[float]) -> dict[str, float]:
            e = np.abs(np.asarray(errors))
            return {"within_10pct": round(float(np.mean(e <= 0.10)), 4), "median_abs_error": round(float(np.median(e)), 4),
                    "rmspe": round(float(np.sqrt(np.mean(e ** 2))), 4)}
        how = ({"method": "kernel residual", "kernels": self.kernels, "scale": round(self.scale, 4),
                "kernel_ratios": {k: round(v, 4) for k, v in self.kernel_ratios.items()}} if self.residual is not None
               else {"method": "group multipliers", "ridge": self.ridge})
        return {"multipliers": {k: round(v, 4) for k, v in self.multipliers.items()}, **how,
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


@dataclass(frozen=True)
class _ReferenceKernels:
    """One reference network as the kernel fit sees it: the source's kernel predictions and this machine's costs."""

    kernels: list[Kernel]
    predicted_ms: np.ndarray
    count: float  # the end-to-end model's node count
    measured_ms: np.ndarray  # each kernel's fastest in-network cost over the passes
    latency_ms: float  # the network's fastest end to end


def _reference_kernels(source: "KernelPredictor", graphs: Sequence[Graph], records: Sequence[dict[str, Any]]
                       ) -> list[_ReferenceKernels]:
    """The references whose node times line up with the source's kernels, every pass."""
    out = []
    for (kernels, predicted, count), graph, record in zip(source.kernel_breakdown(graphs), graphs, records):
        passes = [kernel_costs_from_nodes(graph, kernels, nodes).get("kernel_min_ms") for nodes in record.get("nodes", [])]
        found = [p for p in passes if p]
        if found:
            out.append(_ReferenceKernels(kernels, np.asarray(predicted, float), count, np.min(np.array(found), axis=0),
                                         float(record["latency_ms"])))
    return out


def _fit_residual(source: "KernelPredictor", refs: Sequence[_ReferenceKernels], rows: Sequence[np.ndarray]
                  ) -> tuple[KernelResidual, float]:
    """The residual on ``refs``' kernels, and the factor that maps the corrected networks onto their latencies."""
    residual = KernelResidual.fit(np.vstack(rows), np.concatenate([r.measured_ms for r in refs]),
                                  np.concatenate([r.predicted_ms for r in refs]), tuple(GROUPS))
    totals = [source.network_total(list(r.predicted_ms * residual.factors(x)), r.count) for r, x in zip(refs, rows)]
    return residual, float(np.median([r.latency_ms / t for r, t in zip(refs, totals) if t > 0]))


def fit_kernel_correction(source: "KernelPredictor", graphs: Sequence[Graph], records: Sequence[dict[str, Any]]
                          ) -> FittedCorrection:
    """The per-kernel residual and network factor for this machine from the references' node times (see the module)."""
    by_name = {g.name: g for g in graphs}
    refs = _reference_kernels(source, [by_name[r["name"]] for r in records], records)
    if len(refs) < 3:
        raise ProfileError(f"adaptation needs at least 3 reference networks whose kernels the runtime's profiler "
                           f"timed, got {len(refs)}")
    rows = [residual_rows(r.kernels, r.predicted_ms, source.hardware, tuple(GROUPS)) for r in refs]
    residual, scale = _fit_residual(source, refs, rows)
    held_out = []
    for i, ref in enumerate(refs):
        keep = [j for j in range(len(refs)) if j != i]
        fold, fold_scale = _fit_residual(source, [refs[j] for j in keep], [rows[j] for j in keep])
        held_out.append(fold_scale * source.network_total(list(ref.predicted_ms * fold.factors(rows[i])), ref.count)
                        / ref.latency_ms - 1.0)
    before = [source.network_total(list(r.predicted_ms), r.count) / r.latency_ms - 1.0 for r in refs]
    sums = {group: [0.0, 0.0] for group in GROUPS}  # measured, predicted ms of each group's kernels
    for r in refs:
        for kernel, measured, predicted in zip(r.kernels, r.measured_ms, r.predicted_ms):
            sums[group_of(kernel.kind)][0] += float(measured)
            sums[group_of(kernel.kind)][1] += float(predicted)
    ratios = {group: m / p for group, (m, p) in sums.items() if m > 0 and p > 0}
    return FittedCorrection({}, 0.0, tuple(held_out), tuple(before), residual, scale, ratios,
                            sum(len(r.kernels) for r in refs))


def correction_from(data: dict[str, Any], provenance: Optional[dict[str, Any]] = None) -> MachineCorrection:
    """The MachineCorrection an adapted profile file describes."""
    found = data["correction"]
    residual = KernelResidual.from_dict(found["residual"]) if found.get("residual") else None
    return MachineCorrection({k: float(v) for k, v in found.get("multipliers", {}).items()}, 1.0,
                             provenance or {"adapted": True, "source_machine": data.get("source_machine"),
                                            "held_out": found.get("held_out"), "method": found.get("method", "group multipliers")},
                             residual, float(found.get("scale", 1.0)), spread=adaptation_spread(found.get("held_out")))


def adaptation_spread(held_out: Optional[dict[str, Any]]) -> float:
    """The relative 95% half-width an adaptation adds to a prediction's interval: 1.96 x its leave-one-out
    RMS relative error on the reference networks (0 when it was not checked)."""
    rmspe = (held_out or {}).get("rmspe")
    return 1.96 * float(rmspe) if rmspe is not None and math.isfinite(float(rmspe)) else 0.0


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
        if "multipliers" not in data["correction"] and "residual" not in data["correction"]:
            raise KeyError("correction")
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
    count (through the runtime's per-node profiler where it has one) and writes
    ``<profile>/adapted/<machine>.json`` (source machine, the references and their latencies, the
    fitted correction and its held-out error), which ``predictor_for`` then applies.
    """
    from edgetune.predict._machine import current_machine
    from edgetune.predict._predictors import KernelPredictor
    from edgetune.predict._profile import profile_folder

    if budget_min <= 0:
        raise ConfigError(f"adaptation budget must be positive, got {budget_min} minutes")
    folder = profile_folder(target.name, runtime, profiles_dir)
    if not (folder / "metadata.json").exists():
        raise ProfileError(f"no {target.name}/{runtime} profile to adapt in {folder}; put one taken on another machine "
                           f"there, or take one here with `edgetune profile --target {target.name} --runtime {runtime}`")
    source = KernelPredictor(folder)
    _refuse_own_machine(source, target.name, runtime, folder)
    graphs = reference_networks(count)
    own = measurer is None
    measurer = measurer or GraphMeasurer(target, runtime, source.threads, interleave=4,
                                         config=reference_config(budget_min * 60.0, len(graphs), passes=4))
    try:
        if measurer.threads != source.threads:
            raise ConfigError(f"the profile predicts {source.threads}-thread latencies; adapt it at {source.threads} "
                              f"thread(s), not {measurer.threads}")
        nodes = measurer.profiles_nodes
        progress(f"timing {len(graphs)} reference networks in passes of alternating order"
                 + (", kernel by kernel through the runtime's profiler" if nodes else ""))
        started = time.perf_counter()
        # passes while they fit in 80% of the budget (the rest: start-up, the fit)
        records, stopped = measure_references(measurer.measure, graphs, nodes=nodes, budget_s=0.8 * budget_min * 60.0)
        measure_s = time.perf_counter() - started
        libraries = measurer.versions()
    finally:
        if own:
            measurer.close()
    if stopped:
        raise KeyboardInterrupt
    fitted = _fit(source, graphs, records, nodes)
    machine = current_machine()
    document = _document(source, target, runtime, folder, machine, libraries, measure_s, fitted, records)
    path = adapted_path(folder, machine)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return AdaptResult(path, document["source_machine"], machine, len(records), measure_s, fitted)


def _refuse_own_machine(source: "KernelPredictor", target: str, runtime: str, folder: Path) -> None:
    """A profile taken on this machine is not adapted: 20 reference networks would replace a fit on thousands
    (and, in a busy hour, fit the hour's load); its drift is what ``--calibrate`` rescales."""
    from edgetune.predict._machine import current_machine, describe, taken_here

    if taken_here(source.metadata):
        raise ConfigError(f"the {target}/{runtime} profile in {folder} was taken on this machine ({describe(current_machine())}) and "
                          "needs no adaptation here; `edgetune predict --calibrate` rescales it for today's speed, and "
                          f"`edgetune profile --target {target} --runtime {runtime} --fresh` measures it again")


def _fit(source: "KernelPredictor", graphs: Sequence[Graph], records: Sequence[dict[str, Any]], nodes: bool) -> FittedCorrection:
    """Per kernel where the runtime's profiler timed the references' kernels, else per group on their totals."""
    if nodes and sum(1 for r in records if any(r.get("nodes", []))) >= 3:
        return fit_kernel_correction(source, graphs, records)
    kept = {r["name"] for r in records}
    return fit_correction(source.predict_many([g for g in graphs if g.name in kept]), [r["latency_ms"] for r in records])


def _document(source: "KernelPredictor", target: Target, runtime: str, folder: Path, machine: dict[str, Any],
              libraries: dict[str, str], measure_s: float, fitted: FittedCorrection, records: list[dict[str, Any]]
              ) -> dict[str, Any]:
    """The adapted profile as written to disk: provenance, the correction (with its model) and the references."""
    from edgetune.predict._machine import profile_machine

    correction = fitted.summary()
    if fitted.residual is not None:
        correction["residual"] = fitted.residual.to_dict()
        note = ("predicted ms here = the source profile's kernel predictions, each times the residual model's factor "
                "for that kernel, added up by the source's end-to-end model, times scale; fitted on the kernels of "
                "the reference networks timed here (per-node profiler), leave-one-network-out error")
    else:
        note = ("predicted ms here = multiplier of the kernel's group x the source profile's prediction "
                "(call: the per-call cost); fitted on the reference networks timed here, leave-one-out error")
    return {"schema": 1, "kind": "adapted profile", "target": target.name, "runtime": runtime,
            "source_profile": str(folder), "source_created": source.metadata.get("created"),
            "source_machine": profile_machine(source.metadata), "machine": machine,
            "threads": source.threads, "libraries": libraries, "source_libraries": source.metadata.get("versions", {}),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "measure_s": round(measure_s, 1), "correction": correction,
            "references": references_document(records, machine, source.threads), "note": note}
