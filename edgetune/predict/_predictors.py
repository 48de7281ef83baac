"""Predictors: the profiled kernel predictor, the FLOPs baseline, and direct measurement."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from edgetune.errors import ConfigError
from edgetune.predict._adapt import MachineCorrection
from edgetune.predict._base import KernelEstimate, LatencyEstimate, Predictor, ProfileError
from edgetune.predict._borders import border_share, load_borders
from edgetune.predict._calibrate import Calibration
from edgetune.predict._context import InNetworkCosts, counted_nodes, network_ms
from edgetune.predict._estimate import ESTIMATE_REL_RMSE
from edgetune.predict._estimate import estimate as estimate_kernels
from edgetune.predict._fusion import FusionRules, Kernel, split_kernels
from edgetune.predict._graph import Graph
from edgetune.predict._hardware import ProfileHardware
from edgetune.predict._own import load_own
from edgetune.predict._profile import profile_folder
from edgetune.predict._regress import load_models
from edgetune.predict._sampling import border_group
from edgetune.targets import Target


def _read_metadata(folder: Path) -> dict:
    path = folder / "metadata.json"
    if not path.exists():
        raise ProfileError(f"no trained profile in {folder}; run `edgetune profile --target {folder.parent.name} "
                           f"--runtime {folder.name}` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path} is corrupt ({exc.msg}); re-run `edgetune profile` with --fresh") from None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one batched prediction.

    A prediction allocates thousands of small objects and frees them without cycles, but the
    allocations trigger full collections that walk every object the process holds (about 120,000
    once ONNX Runtime, LightGBM and Optuna are imported): 40% of a first batched call of 110
    networks. Reference counting still frees everything; collection resumes when the call returns.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


# what a prediction's 95% interval stands for before any correction (``MachineCorrection`` adds its own parts)
MODEL_INTERVAL = ("the profile's model error (its regressors' held-out error, kernel by kernel, and the end-to-end model's)",
                  "not for today's speed: it is at the speed this machine ran at when it was profiled (or adapted); "
                  "`--calibrate` re-times it in about 10 s")


class KernelPredictor(Predictor):
    """nn-Meter-style: split into kernels with the measured fusion rules, predict each, sum."""

    name = "kernel"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.metadata = _read_metadata(self.folder)
        fusion = json.loads((self.folder / "fusion.json").read_text()) if (self.folder / "fusion.json").exists() else {}
        self.rules = FusionRules.from_dict(fusion)
        self.models = load_models(self.folder / "models")
        self.overhead_ms = float(self.metadata["overhead_ms"])
        self.correction = load_borders(self.folder / "models", self.metadata.get("border_correction", {}).get("groups", []))
        self.threads = int(self.metadata.get("threads", 1))
        # the profile's hardware terms (a systolic array's cycles); none in a CPU profile
        self.hardware = ProfileHardware.from_metadata(self.metadata)
        in_network = self.metadata.get("in_network") or {}
        self.network_model: dict = in_network.get("network_model", {})
        self.in_network = InNetworkCosts.load(self.models, in_network, self.hardware) if self.network_model else None
        self.models = {k: m for k, m in self.models.items() if not k.startswith("ctx-")}
        if self.metadata.get("features") and list(self.metadata["features"]) != list(self.hardware.feature_names):
            raise ProfileError(f"the profile in {self.folder} was trained on other kernel features; re-run `edgetune profile --fresh`")
        # the profile's own correction, to networks timed alone (``_own``); part of the profile on any machine
        self.own: Optional[MachineCorrection] = load_own(self.folder)
        # this machine's correction of a profile taken on another (``_adapt``) and today's drift (``_calibrate``)
        self.machine: Optional[MachineCorrection] = None
        self.calibration: Optional[Calibration] = None

    def calibrate_with(self, found: Calibration) -> None:
        """Rescale every prediction by today's drift (on top of this machine's correction, if any)."""
        machine = self.machine or MachineCorrection(provenance={"adapted": False})
        self.machine = replace(machine.with_drift(found.factor, found.noise, found.uncertainty),
                               provenance={**machine.provenance, "calibration": found.to_dict()})
        self.calibration = found

    def predict_many(self, graphs: Sequence[Graph]) -> list[LatencyEstimate]:
        """Per kernel: its in-network cost where the profile has one (``_context``), else its isolated
        regressor less the learnt border share, else an estimate (``_estimate``); per network: the
        end-to-end model; then this machine's correction (``_adapt``) and drift factor, when set."""
        with _collector_paused():
            return self._predict_many(graphs)

    def _predict_many(self, graphs: Sequence[Graph]) -> list[LatencyEstimate]:
        split, found, nodes, latency, how = self._costs(graphs)
        if self.machine is not None:  # this machine's kernels against the profile's (``_residual``), before adding up
            latency = self.machine.correct_kernels(split, latency, self.hardware)
        out = [self._network(graph, gi, kernels, latency, how, found, nodes)
               for gi, (graph, kernels) in enumerate(zip(graphs, split))]
        return [self.machine.apply(e) for e in out] if self.machine is not None else out

    def kernel_breakdown(self, graphs: Sequence[Graph]) -> list[tuple[list[Kernel], list[float], float]]:
        """Per graph: its kernels, each one's predicted cost inside it (with the profile's own correction, without
        a machine's, before the end-to-end model) and the node count the end-to-end model takes (``network_total``)."""
        split, _found, nodes, latency, _how = self._costs(graphs)
        return [(list(kernels), [latency[(gi, ki)] for ki in range(len(kernels))],
                 counted_nodes(self.network_model, [nodes.get((gi, ki), 1.0) for ki in range(len(kernels))]))
                for gi, kernels in enumerate(split)]

    def network_total(self, kernel_ms: Sequence[float], count: float) -> float:
        """The network's latency from its kernels' costs: the end-to-end model, or the per-call cost plus their sum
        (times the profile's own end-to-end factor, ``_own``)."""
        total = network_ms(self.network_model, kernel_ms, count) if self.network_model else self.overhead_ms + sum(kernel_ms)
        return total * self.own.scale if self.own is not None else total

    def _costs(self, graphs: Sequence[Graph]) -> tuple[list[list[Kernel]], dict, dict, dict, dict]:
        """The graphs' kernels, the in-network costs and node shares found, and every kernel's cost and how it was estimated."""
        split = [split_kernels(g, self.rules) for g in graphs]
        found, nodes = self.in_network.costs(graphs, split) if self.in_network is not None else ({}, {})
        latency, how = self._kernel_costs(split, found)
        if self.own is not None:
            latency = self.own.correct_kernels(split, latency, self.hardware)
        return split, found, nodes, latency, how

    def _kernel_costs(self, split: Sequence[Sequence[Kernel]], found: dict[tuple[int, int], float]
                      ) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], str]]:
        """(graph, kernel) -> ms for every kernel, and how the estimated ones were estimated."""
        isolated: dict[str, list[tuple[int, int, Kernel]]] = {}
        missing: list[tuple[int, int, Kernel]] = []
        for gi, kernels in enumerate(split):
            for ki, kernel in enumerate(kernels):
                if (gi, ki) in found:
                    continue
                if kernel.head.kind in self.models:
                    isolated.setdefault(kernel.head.kind, []).append((gi, ki, kernel))
                else:
                    missing.append((gi, ki, kernel))
        latency = dict(found)
        for head, items in isolated.items():
            preds = self.models[head].predict(np.array([self.hardware.features(k) for _g, _k, k in items]))
            # alone, a kernel pays layout conversions it does not pay inside a network
            share = border_share(self.correction, border_group(head), [k for _g, _k, k in items], preds)
            for (gi, ki, _k), value in zip(items, preds * (1.0 - share)):
                latency[(gi, ki)] = float(value)
        how: dict[tuple[int, int], str] = {}
        for (gi, ki, _k), (value, text) in zip(missing, estimate_kernels([k for _g, _k, k in missing], self.models, self.hardware)):
            latency[(gi, ki)], how[(gi, ki)] = value, text
        return latency, how

    def _network(self, graph: Graph, gi: int, kernels: Sequence[Kernel], latency: dict[tuple[int, int], float],
                 how: dict[tuple[int, int], str], found: dict[tuple[int, int], float],
                 nodes: dict[tuple[int, int], float]) -> LatencyEstimate:
        values = [latency[(gi, ki)] for ki in range(len(kernels))]
        var = 0.0
        for ki, (kernel, value) in enumerate(zip(kernels, values)):
            model = self.in_network.models.get(kernel.head.kind) if (gi, ki) in found else None  # type: ignore[union-attr]
            model = model or self.models.get(kernel.head.kind)
            rel = model.rel_rmse if model is not None else (ESTIMATE_REL_RMSE if (gi, ki) in how else 0.0)
            var += (rel * value) ** 2  # 0: a kernel always run inside its neighbour (0 ms) of a kind without a regressor
        kernel_sum = sum(values)
        if self.network_model:
            # the runtime profiler's bookkeeping is per node run: kernels riding on a neighbour pay none
            count = counted_nodes(self.network_model, [nodes.get((gi, ki), 1.0) for ki in range(len(kernels))])
            total = self.network_total(values, count)
            var = var * self.network_model["scale"] ** 2 + (self.network_model["rel_rmse"] * total) ** 2
            # the profiler's node times carry its own bookkeeping, which the end-to-end model takes
            # out: kernels are shown on the end-to-end scale, so they add up to the total less the call
            on_scale = max((total - self.network_model["call_ms"]) / kernel_sum if kernel_sum > 0 else 1.0, 0.0)
            values = [v * on_scale for v in values]
            kernel_sum = sum(values)
        else:
            total = self.network_total(values, 0.0)
        parts = [KernelEstimate(kernel.kind, kernel.ops, value, kernel.head.macs, how.get((gi, ki), ""))
                 for ki, (kernel, value) in enumerate(zip(kernels, values))]
        half = 1.96 * math.sqrt(var)
        estimated = sum(p.latency_ms for p in parts if p.estimated)
        return LatencyEstimate(graph.name, total, max(total - half, 0.0), total + half, self.name, tuple(parts), (),
                               {"overhead_ms": total - kernel_sum, "target": self.metadata["target"],
                                "runtime": self.metadata["runtime"],
                                "kernel_costs": "in-network" if self.network_model else "isolated",
                                "own_correction": self.own is not None,
                                "interval_covers": list(MODEL_INTERVAL),
                                "estimated_share": estimated / total if total > 0 else 0.0})


class FlopsPredictor(Predictor):
    """The baseline: per-kernel latency = a + b * MACs, fitted on the same profile. Shows what the regressors add."""

    name = "flops"

    def __init__(self, folder: Path) -> None:
        self.metadata = _read_metadata(Path(folder))
        coef = self.metadata["flops_baseline"]
        self.a, self.b = float(coef["intercept_ms"]), float(coef["ms_per_mac"])
        self.overhead_ms = float(self.metadata["overhead_ms"])
        fusion_path = Path(folder) / "fusion.json"
        self.rules = FusionRules.from_dict(json.loads(fusion_path.read_text())) if fusion_path.exists() else FusionRules()

    def predict_many(self, graphs: Sequence[Graph]) -> list[LatencyEstimate]:
        out = []
        for graph in graphs:
            kernels = split_kernels(graph, self.rules)
            total = self.overhead_ms + sum(max(self.a + self.b * k.head.macs, 0.0) for k in kernels)
            out.append(LatencyEstimate(graph.name, total, total, total, self.name))
        return out


class MeasuringPredictor(Predictor):
    """No profile yet: measure each network on the target instead (slow, but real). Labelled 'measured'."""

    name = "measured"

    def __init__(self, target: Target, runtime: str = "onnxruntime", threads: Optional[int] = None) -> None:
        from edgetune.predict._measure import NETWORK_CONFIG, GraphMeasurer

        self.measurer = GraphMeasurer(target, runtime, threads or 1, config=NETWORK_CONFIG, interleave=1)
        self.threads = self.measurer.threads

    def predict_many(self, graphs: Sequence[Graph]) -> list[LatencyEstimate]:
        timings, interrupted = self.measurer.measure(graphs)
        if interrupted:
            raise KeyboardInterrupt
        return [LatencyEstimate(t.name, t.median_ms, t.ci_low_ms, t.ci_high_ms, self.name, extra={"measured": True})
                for t in timings]

    def close(self) -> None:
        self.measurer.close()


# The predictors chosen by name (``predictor_for(kind=...)``, ``edgetune predict --predictor``), each built from
# a trained profile folder; MeasuringPredictor is not among them: it is the fallback where there is no profile.
predictor_registry: dict[str, type[Union[KernelPredictor, FlopsPredictor]]] = {
    cls.name: cls for cls in (KernelPredictor, FlopsPredictor)
}


def predictor_for(target: Union[str, Target], runtime: str = "onnxruntime", profiles_dir: Optional[Path] = None,
                  kind: str = "kernel", fallback: bool = True, calibrate: Union[bool, str] = False) -> Predictor:
    """The predictor the search queries for ``target``/``runtime``.

    ``kind`` is "kernel" (the profiled regressors) or "flops" (the baseline). Without a trained
    profile, ``fallback`` returns a MeasuringPredictor (with a warning) instead of failing. On a
    local target the kernel predictor applies this machine's adapted profile when there is one
    (``profile --adapt``) and otherwise warns, naming that command, when the profile was taken on
    another CPU. ``calibrate``: True re-times the stored reference networks now (about 10 s) and
    rescales for today's speed (an error without stored references); "auto" does so only when there
    are references to re-time (the search, once per study).
    """
    from edgetune.targets import load_target

    resolved = load_target(target) if isinstance(target, str) else target
    folder = profile_folder(resolved.name, runtime, profiles_dir)
    if kind not in predictor_registry:
        raise ConfigError(f"unknown predictor '{kind}'; valid predictors: {', '.join(sorted(predictor_registry))}")
    if calibrate not in (True, False, "auto"):
        raise ConfigError(f"calibrate must be true, false or 'auto', got {calibrate!r}")
    if not (folder / "metadata.json").exists() and fallback:
        warnings.warn(f"no latency profile for {resolved.name}/{runtime} in {folder}: measuring each network instead "
                      f"(run `edgetune profile --target {resolved.name}` for millisecond predictions)", stacklevel=2)
        return MeasuringPredictor(resolved, runtime)
    predictor = predictor_registry[kind](folder)
    _warn_if_disturbed(predictor, resolved.name, runtime)
    if resolved.transport != "local":
        if calibrate is True:
            raise ConfigError(f"--calibrate re-times networks here; target '{resolved.name}' is {resolved.transport}")
        return predictor
    adapted = _for_this_machine(predictor, resolved.name, runtime, folder)
    if calibrate and isinstance(predictor, KernelPredictor):
        _calibrate_now(predictor, resolved, runtime, folder, adapted, required=calibrate is True)
    return predictor


def _warn_if_disturbed(predictor: Predictor, target: str, runtime: str) -> None:
    """Warn, at every use, when the profile says its fit suffered from other load while it was taken
    (``disturbed.warn``: past ``_drift.DISTURBED_WARN`` with a self-check under ``_drift.SELF_CHECK_OK``; its
    summary said so once, when it was taken)."""
    in_network = getattr(predictor, "metadata", {}).get("in_network") or {}
    disturbed, check = in_network.get("disturbed") or {}, in_network.get("networks_check") or {}
    if not disturbed.get("warn"):
        return
    held = f"; {check['within_10pct']:.0%} of its own held-out networks within 10%" if check.get("networks") else ""
    warnings.warn(f"the {target}/{runtime} profile was taken while other load slowed this machine ({disturbed['share']:.0%} of "
                  f"its networks{held}): its predictions carry that load. Run `edgetune profile --target {target} "
                  f"--runtime {runtime} --fresh` again when the machine is idle", stacklevel=3)


def adapt_command(target: str, runtime: str) -> str:
    """The one command that makes a profile taken elsewhere usable on this machine."""
    return f"edgetune profile --target {target} --runtime {runtime} --adapt"


def _for_this_machine(predictor: Predictor, target: str, runtime: str, folder: Path) -> Optional[dict]:
    """Apply this machine's adapted profile (returned), or warn when the profile describes another CPU."""
    from edgetune.predict._adapt import adapted_path, correction_from, load_adapted
    from edgetune.predict._machine import current_machine, describe, profile_machine, same_machine

    here = current_machine()
    adapted = load_adapted(folder, here)
    if adapted is not None and adapted.get("source_created") not in (None, predictor.metadata.get("created")):  # type: ignore[attr-defined]
        warnings.warn(f"the adapted profile in {folder} corrects an earlier {target}/{runtime} profile; ignored. "
                      f"Run `{adapt_command(target, runtime)}` again", stacklevel=3)
        adapted = None
    taken_on = profile_machine(predictor.metadata)  # type: ignore[attr-defined]
    if adapted is not None and taken_on is not None and same_machine(taken_on, here):  # written before --adapt refused it
        warnings.warn(f"the adapted profile in {folder} corrects a {target}/{runtime} profile taken on this same machine; "
                      f"ignored (the profile as taken is the accurate one here). Delete {adapted_path(folder, here)}",
                      stacklevel=3)
        adapted = None
    if adapted is not None and isinstance(predictor, KernelPredictor):
        predictor.machine = correction_from(adapted)
        return adapted
    if taken_on is not None and not same_machine(taken_on, here):
        warnings.warn(f"the {target}/{runtime} profile was taken on {describe(taken_on)}, this machine is {describe(here)} "
                      f"and has no adapted profile: predictions describe that CPU. Run `{adapt_command(target, runtime)}` "
                      "(about 3 minutes) once here; `--fresh` instead of `--adapt` (about 30) is the accurate path",
                      stacklevel=3)
    return adapted


def _calibrate_now(predictor: KernelPredictor, target: Target, runtime: str, folder: Path, adapted: Optional[dict],
                   required: bool) -> None:
    from edgetune.predict._calibrate import calibrate, stored_references
    from edgetune.predict._machine import current_machine

    references = stored_references(folder, adapted, current_machine())
    if references is None:
        if required:
            raise ProfileError(f"no reference latencies of this machine stored with the {target.name}/{runtime} profile to "
                               f"calibrate against; run `{adapt_command(target.name, runtime)}` (it stores them)")
        return
    predictor.calibrate_with(calibrate(references, target, runtime, predictor.threads))
