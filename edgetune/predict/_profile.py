"""`edgetune profile`: measure kernels on a target, detect fusion, train the per-kernel regressors.

Everything lands in ``profiles/<target>/<runtime>/``:

- ``measurements.csv``  one row per measured kernel (features, raw and normalised latency)
- ``fusion.json``       the fusion rules and the timings that decided them
- ``state.json``        per-call overhead, the reference speed, time spent so far (for resume)
- ``environment.json``  where the measurements were taken (CPU, threads, governor, versions)
- ``models/``           one LightGBM text model per kernel type + ``models.json``
- ``metadata.json``     versions, counts and held-out accuracy of every regressor
- ``references.json``   the reference networks' latencies here (``_references``; for ``predict --calibrate``)
- ``adapted/``          corrections of this profile for other machines (``profile --adapt``, ``_adapt``)

The profile is resumable: each measured group is appended to the CSV before the next starts,
so an interrupted run continues from what it stored when started again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edgetune.errors import ConfigError
from edgetune.predict._base import ProfileError
from edgetune.predict._borders import check_on_chains, fit_borders, save_borders
from edgetune.predict._context import attribute_nodes, fit_context
from edgetune.predict._fusion import FusionRules, detect_fusion, split_kernels
from edgetune.predict._graph import Graph, GraphBuilder, graph_from_dict, graph_to_dict
from edgetune.predict._hardware import GENERIC_HARDWARE, ProfileHardware
from edgetune.predict._machine import current_machine
from edgetune.predict._measure import GraphMeasurer, reference_graph
from edgetune.predict._profile_store import ProfileStore
from edgetune.predict._references import store_references
from edgetune.predict._regress import bagged_ensemble, fit_flops_baseline, fit_kind, save_models
from edgetune.predict._sampling import HEAD_SHARE, sample_border_pair, sample_chain, sample_kernel, sample_network
from edgetune.targets import Target

SCHEMA_VERSION = 1
_INITIAL_PER_HEAD = 10
_ROUND = 24  # kernels per adaptive round (shared out by HEAD_SHARE)
_POOL = 150
_INITIAL_CHAINS = 8
_CHAINS_PER_ROUND = 2
_NETWORKS_PER_ROUND = 12  # runtimes with a per-node profiler learn in-network costs from these
_MAX_FAILURES = 3
_INITIAL_BORDERS = 24
_BORDERS_PER_ROUND = 4


@dataclass(frozen=True)
class ProfileResult:
    folder: Path
    kernels: int
    new_kernels: int
    elapsed_s: float
    fusion: FusionRules
    metadata: dict
    interrupted: bool = False


def profile_folder(target: str, runtime: str, profiles_dir: Optional[Path] = None) -> Path:
    from edgetune.pipeline._run import default_profiles_dir

    base = Path(profiles_dir) / target if profiles_dir else default_profiles_dir(target)
    return base / runtime


def _empty_graph() -> Graph:
    b = GraphBuilder("empty", (1, 1, 1, 1))
    return b.build(b.relu("input"))


def profile(
    target: Target,
    runtime: str = "onnxruntime",
    budget_min: float = 20.0,
    profiles_dir: Optional[Path] = None,
    threads: Optional[int] = None,
    seed: int = 0,
    fresh: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
    measurer: Optional[GraphMeasurer] = None,
    rpc_tracker: Optional[str] = None,
) -> ProfileResult:
    """Profile ``runtime`` on ``target`` for about ``budget_min`` minutes in all (resuming earlier runs).

    An rpc target is profiled on its boards behind ``rpc_tracker`` (HOST:PORT, default $EDGETUNE_RPC_TRACKER).
    """
    from edgetune.bench import environment

    if budget_min <= 0:
        raise ConfigError(f"profiling budget must be positive, got {budget_min} minutes")
    folder = ProfileStore(profile_folder(target.name, runtime, profiles_dir))
    if fresh:
        folder.clear()
    folder.path.mkdir(parents=True, exist_ok=True)
    own = measurer is None
    measurer = measurer or GraphMeasurer(target, runtime, threads or 1, interleave=6, rpc_tracker=rpc_tracker)
    if measurer.reference is None:
        measurer.reference = reference_graph()
    try:
        return _run(target, runtime, budget_min, folder, measurer, seed, progress, environment)
    finally:
        if own:
            measurer.close()


def _run(target: Target, runtime: str, budget_min: float, folder: ProfileStore, measurer: GraphMeasurer, seed: int,
         progress: Callable[[str], None], environment: Callable) -> ProfileResult:
    env = environment(target, measurer.threads, measurer.versions())
    state = folder.read_json(folder.state_path)
    if state is not None:
        if state.get("schema") != SCHEMA_VERSION:
            raise ProfileError(f"{folder.state_path} is from profile schema {state.get('schema')}, this edgetune writes "
                               f"{SCHEMA_VERSION}; re-run with --fresh")
        old = state["environment"]
        changed = [k for k in ("cpu_model", "threads", "libraries") if old.get(k) != env.get(k)]
        if changed:
            raise ProfileError(f"the profile in {folder.path} was taken with different {', '.join(changed)}; "
                               "re-run with --fresh to start over for this setup")
    machine = current_machine() if target.transport == "local" else {}  # the CPU model and its ISA features
    start = time.perf_counter()
    spent_before = float(state["elapsed_s"]) if state else 0.0
    budget_s = budget_min * 60.0

    def elapsed() -> float:
        return spent_before + time.perf_counter() - start

    def save_state(**extra: object) -> None:
        nonlocal state
        state = {**(state or {}), "schema": SCHEMA_VERSION, "environment": env, "elapsed_s": round(elapsed(), 2),
                 "runtime": runtime, "target": target.name, "threads": measurer.threads, "machine": machine, **extra}
        folder.write_json(folder.state_path, state)

    try:
        rules = _calibrate(folder, measurer, progress, save_state, env)
    except KeyboardInterrupt:
        if state is not None:
            save_state()
        return ProfileResult(folder.path, len(folder.rows()), 0, elapsed(), FusionRules(), {}, interrupted=True)
    overhead = float(state["overhead_ms"])  # type: ignore[index]
    hardware = ProfileHardware.for_target(target)

    def latency(t) -> float:  # type: ignore[no-untyped-def]
        return max(t.latency_ms - overhead, hardware.floor_ms)

    interrupted = False
    rows = folder.rows()
    chains = folder.chains()
    borders = folder.borders()
    new_kernels = 0
    rng = np.random.default_rng(seed + 7919 * len(rows) + 104729 * len(chains))
    heads = [h for h in HEAD_SHARE if h not in (state or {}).get("uncosted", [])]
    failures: dict[str, int] = {}
    while not interrupted and elapsed() < budget_s:
        new_chains, interrupted = _measure_networks(measurer, rng, rules, len(chains))
        folder.append_lines(folder.chains_path, new_chains)
        chains += new_chains
        want_borders = _INITIAL_BORDERS if len(borders) < _INITIAL_BORDERS else _BORDERS_PER_ROUND
        pairs = [sample_border_pair(rng, rules, len(borders) + i) for i in range(want_borders)]
        timings, stopped = measurer.measure([g for _group, one, many in pairs for g in (one, many)])
        new_borders = [{"group": group, "in_elems": one.ops[0].in_elems, "out_elems": one.ops[-1].out_elems,
                        "single_ms": latency(a), "repeated_ms": latency(b), "repeats": len(many.ops) // max(len(one.ops), 1)}
                       for (group, one, many), a, b in zip(pairs, timings[0::2], timings[1::2]) if not (a.error or b.error)]
        folder.append_lines(folder.borders_path, new_borders)
        borders += new_borders
        save_state()
        if interrupted or stopped:
            interrupted = True
            break
        counts = {h: sum(1 for r in rows if r["head"] == h) for h in heads}
        batch: list[Graph] = []
        lacking = [h for h in heads if counts[h] < _INITIAL_PER_HEAD]
        if lacking:
            for h in lacking:
                batch += [sample_kernel(h, rng, rules, len(rows) + len(batch) + i) for i in range(_INITIAL_PER_HEAD - counts[h])]
        else:
            for h in heads:
                want = max(1, int(round(_ROUND * HEAD_SHARE[h])))
                batch += _most_uncertain(h, rows, rng, rules, want, len(rows) + len(batch), hardware)
        for chunk_start in range(0, len(batch), measurer.interleave):
            if elapsed() >= budget_s:
                break
            chunk = batch[chunk_start:chunk_start + measurer.interleave]
            timings, interrupted = measurer.measure(chunk)
            new_rows = [_row(len(rows) + i, g, t, latency(t), rules) for i, (g, t) in enumerate(zip(chunk, timings)) if not t.error]
            for g, t in zip(chunk, timings):
                if t.error:
                    head = split_kernels(g, rules)[0].head.kind
                    failures[head] = failures.get(head, 0) + 1
                    if failures[head] >= _MAX_FAILURES and head in heads:
                        heads.remove(head)
                        progress(f"{head} kernels cannot run on {target.name}/{runtime} ({t.error[:120]}); not costed")
                        save_state(uncosted=sorted(set(state.get("uncosted", [])) | {head}))  # type: ignore[union-attr]
            folder.append(new_rows)
            rows += new_rows
            new_kernels += len(new_rows)
            save_state()
            if interrupted:
                break
        progress(f"{len(rows)} kernels measured, {elapsed() / 60:.1f} of {budget_min:g} min")
    if interrupted:
        save_state()
        return ProfileResult(folder.path, len(rows), new_kernels, elapsed(), rules, {}, interrupted=True)
    progress("training regressors")
    metadata = train(folder.path, rows, chains, borders, rules, state, env, hardware)  # type: ignore[arg-type]
    save_state()
    if target.transport == "local":  # kept for `predict --calibrate`: today's speed against the profile's
        progress("timing the reference networks (kept for `edgetune predict --calibrate`)")
        store_references(folder.path, measurer.measure, measurer.threads, current_machine())
    return ProfileResult(folder.path, len(rows), new_kernels, elapsed(), rules, metadata)


def _measure_networks(measurer: GraphMeasurer, rng: np.random.Generator, rules: FusionRules,
                      stored: int) -> tuple[list[dict], bool]:
    """One round of whole random networks, end to end; with a per-node profiler also each kernel's
    cost inside them (``_context.attribute_nodes``). Returns the records and whether Ctrl-C stopped it."""
    in_context = measurer.profiles_nodes
    want = _INITIAL_CHAINS if stored < _INITIAL_CHAINS else (_NETWORKS_PER_ROUND if in_context else _CHAINS_PER_ROUND)
    graphs = [sample_network(rng, stored + i) if in_context and i % 3 else sample_chain(rng, rules, stored + i)
              for i in range(want)]
    timings, interrupted = measurer.measure(graphs, nodes=in_context)
    records = []
    for i, (graph, timing) in enumerate(zip(graphs, timings)):
        if timing.error:
            continue
        record = {"id": stored + i, "graph": graph_to_dict(graph), "latency_ms": timing.latency_ms,
                  "reference_ms": timing.reference_ms, "median_ms": timing.median_ms, "time": round(time.time(), 1)}
        if timing.nodes:
            kernels = split_kernels(graph, rules)
            mean_ms = attribute_nodes(graph, kernels, [n[:3] for n in timing.nodes])
            min_ms = attribute_nodes(graph, kernels, [(*n[:2], n[3]) for n in timing.nodes])
            if mean_ms is not None and min_ms is not None:
                record["kernel_ms"] = [round(v, 6) for v in mean_ms]
                record["kernel_min_ms"] = [round(v, 6) for v in min_ms]
            record["nodes"] = len(timing.nodes)
        records.append(record)
    return records, interrupted


def _calibrate(folder: ProfileStore, measurer: GraphMeasurer, progress: Callable[[str], None],
               save_state: Callable[..., None], env: dict) -> FusionRules:
    """The per-call overhead and the fusion rules, measured once per profile (KeyboardInterrupt passes through)."""
    state = folder.read_json(folder.state_path)
    if state is None or "overhead_ms" not in state:
        progress("measuring the per-call overhead")
        timings, stopped = measurer.measure([_empty_graph()] * 4)
        if stopped or not timings:
            raise KeyboardInterrupt
        reference = float(np.median([t.reference_ms or 0.0 for t in timings])) or None
        ran = [t.latency_ms for t in timings if not t.error]  # a simulator that only costs conv/FC: no overhead
        save_state(overhead_ms=float(np.median(ran)) if ran else 0.0, reference_ms=reference)
        folder.write_json(folder.path / "environment.json", env)
        state = folder.read_json(folder.state_path)
    fusion_data = folder.read_json(folder.fusion_path)
    if fusion_data is not None:
        return FusionRules.from_dict(fusion_data)
    progress("detecting fusion rules")

    def timed(graphs):  # type: ignore[no-untyped-def]
        result, stop = measurer.measure(graphs)
        if stop:
            raise KeyboardInterrupt
        return [t.normalized_ms(state.get("reference_ms")) for t in result]  # type: ignore[union-attr]

    rules = detect_fusion(timed, overhead_ms=float(state["overhead_ms"]), progress=progress)  # type: ignore[index]
    folder.write_json(folder.fusion_path, rules.to_dict())
    save_state()
    return rules


def _row(index: int, graph: Graph, timing, latency_ms: float, rules: FusionRules) -> dict:  # type: ignore[no-untyped-def]
    kernel = split_kernels(graph, rules)[0]
    return {"id": index, "head": kernel.head.kind, "kind": kernel.kind, "graph": json.dumps(graph_to_dict(graph), separators=(",", ":")),
            "macs": kernel.head.macs, "raw_ms": timing.median_ms, "ci_low_ms": timing.ci_low_ms,
            "ci_high_ms": timing.ci_high_ms, "samples": timing.samples, "converged": int(timing.converged),
            "min_ms": timing.min_ms, "reference_ms": timing.reference_ms or "", "latency_ms": latency_ms,
            "time": round(time.time(), 1)}


def _features_of(row: dict, rules: FusionRules, hardware: ProfileHardware) -> list[float]:
    if "_x" not in row:
        row["_x"] = hardware.features(split_kernels(graph_from_dict(json.loads(row["graph"])), rules)[0])
    return row["_x"]


def _matrix(rows: list[dict], rules: FusionRules, hardware: ProfileHardware) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([_features_of(r, rules, hardware) for r in rows], dtype=float),
            np.array([r["latency_ms"] for r in rows], dtype=float))


def _raw_latencies(rows: list[dict], overhead_ms: float, floor_ms: float) -> None:
    """Kernel latency = fastest run minus the per-call overhead, not rescaled by the reference graph.

    Rescaling by a reference graph timed beside each group was tried: on this VM the small
    reference's own minimum wobbled more than the machine's speed, so it added noise; its timing
    stays in the CSV (reference_ms) for analysis.
    """
    for row in rows:
        row["latency_ms"] = max(row["min_ms"] - overhead_ms, floor_ms)


def _most_uncertain(head: str, rows: list[dict], rng: np.random.Generator, rules: FusionRules, want: int,
                    first_index: int, hardware: ProfileHardware) -> list[Graph]:
    """``want`` new kernels of ``head``: a quarter at random, of the rest half next to the measured kernels
    the model errs on most (out of bag), half where a bagged ensemble disagrees most."""
    mine = [r for r in rows if r["head"] == head]
    pool = [sample_kernel(head, rng, rules, first_index + i) for i in range(_POOL)]
    explore = want // 4
    if len(mine) < 5:
        return pool[:want]
    x, y = _matrix(mine, rules, hardware)
    x_pool = np.array([hardware.features(split_kernels(g, rules)[0]) for g in pool])
    spread, oob = bagged_ensemble(x, y, x_pool, members=4, terms=hardware.baseline_terms, floor_ms=hardware.floor_ms)
    chosen = _near_worst(x, oob, x_pool, (want - explore) // 2)
    for i in np.argsort(-spread):
        if len(chosen) >= want - explore:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    rest = [i for i in range(len(pool)) if i not in set(chosen)]
    chosen += [int(i) for i in rng.choice(rest, size=min(explore, len(rest)), replace=False)]
    return [pool[i] for i in chosen]


def _near_worst(x: np.ndarray, errors: np.ndarray, x_pool: np.ndarray, count: int) -> list[int]:
    """Pool rows nearest (scaled L1 on the features) to the ``count`` training rows with the largest errors."""
    known = np.where(np.isfinite(errors))[0]
    if count < 1 or not len(known):
        return []
    worst = known[np.argsort(-errors[known])][:count]
    scale = x.std(axis=0) + 1e-9
    chosen: list[int] = []
    for row in worst:
        distance = np.abs((x_pool - x[row]) / scale).sum(axis=1)
        distance[chosen] = np.inf
        chosen.append(int(np.argmin(distance)))
    return chosen


def retrain(folder: Path, target: Optional[Target] = None) -> dict:
    """Refit the regressors of an existing profile from its stored measurements (no measuring).

    The hardware terms (``_hardware``) come from ``target``, by default the target the profile names.
    """
    from edgetune.targets import load_target

    store = ProfileStore(Path(folder))
    state = store.read_json(store.state_path)
    fusion = store.read_json(store.fusion_path)
    if state is None or fusion is None:
        raise ProfileError(f"{folder} holds no profile to retrain; run `edgetune profile` first")
    hardware = ProfileHardware.for_target(target or load_target(state["target"]))
    return train(store.path, store.rows(), store.chains(), store.borders(), FusionRules.from_dict(fusion), state,
                 state["environment"], hardware)


def train(folder: Path, rows: list[dict], chains: list[dict], borders: list[dict], rules: FusionRules, state: dict,
          env: dict, hardware: ProfileHardware = GENERIC_HARDWARE) -> dict:
    """Fit one regressor per head kind, the in-network correction, the FLOPs baseline; write models/ + metadata.json.

    ``hardware``: the target's terms beyond the generic features (a systolic array's cycles, the latency floor).
    """
    import lightgbm
    import sklearn

    if not rows:
        raise ProfileError(f"no kernel measurements in {folder}; give the profile a larger --budget")
    _raw_latencies(rows, float(state["overhead_ms"]), hardware.floor_ms)
    models, accuracy = [], {}
    for head in sorted({r["head"] for r in rows}):
        mine = [r for r in rows if r["head"] == head]
        x, y = _matrix(mine, rules, hardware)
        model, errors = fit_kind(head, x, y, terms=hardware.baseline_terms, floor_ms=hardware.floor_ms)
        models.append(model)
        finite = np.abs(errors[np.isfinite(errors)])
        accuracy[head] = {"kernels": len(mine), "held_out_rel_rmse": round(model.rel_rmse, 4),
                          "held_out_within_10pct": round(float(np.mean(finite <= 0.10)), 4) if len(finite) else None}
    save_models(models, folder / "models")
    correction = fit_borders(borders)
    border_meta = save_borders(correction, folder / "models")
    chain_accuracy = check_on_chains(chains, {m.kind: m for m in models}, rules, float(state["overhead_ms"]), correction,
                                     hardware)
    context = fit_context(folder / "models", chains, rules, hardware)
    flops = fit_flops_baseline(np.array([r["macs"] for r in rows]), np.array([r["latency_ms"] for r in rows]))
    metadata = {
        "schema": SCHEMA_VERSION,
        "target": state["target"], "runtime": state["runtime"], "threads": state["threads"],
        "kernels": len(rows), "profiling_s": round(state["elapsed_s"], 1),
        "overhead_ms": state["overhead_ms"], "statistic": "min", "reference_ms": state.get("reference_ms"),
        "fusion": sorted("+".join(p) for p in rules.pairs),
        "uncosted": state.get("uncosted", []), "machine": state.get("machine", {}),
        "border_correction": border_meta, "chains_check": chain_accuracy, "in_network": context,
        "held_out": accuracy, "flops_baseline": flops, "features": list(hardware.feature_names),
        "versions": {"lightgbm": lightgbm.__version__, "scikit-learn": sklearn.__version__, **env.get("libraries", {})},
        "environment": env, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "kernel latency = fastest of >=30 runs minus the per-call overhead (reference_ms: a reference graph "
                "timed with the first group, kept for analysis)",
    }
    if hardware.to_metadata():  # a CPU profile has no hardware terms: its metadata stays as it was
        metadata["hardware"] = {**hardware.to_metadata(),
                                "note": "systolic: the array whose stall-free cycles are a feature and a baseline term; "
                                        "floor_ms: the shortest latency the profile resolves (one clock cycle when simulated)"}
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
    return metadata


def held_out_summary(metadata: dict) -> str:
    """One line per kernel type: count and held-out error."""
    lines = []
    for head, acc in sorted(metadata.get("held_out", {}).items()):
        within = acc["held_out_within_10pct"]
        lines.append(f"{head:8s} {acc['kernels']:5d} kernels  held-out rel. RMSE {acc['held_out_rel_rmse']:.1%}"
                     + (f", {within:.0%} within 10%" if within is not None and not math.isnan(within) else ""))
    return "\n".join(lines)
