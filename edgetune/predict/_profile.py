"""`edgetune profile`: measure kernels on a target, detect fusion, train the per-kernel regressors.

Everything lands in ``profiles/<target>/<runtime>/``:

- ``measurements.csv``  one row per measured kernel (features, raw and normalised latency)
- ``fusion.json``       the fusion rules and the timings that decided them
- ``state.json``        per-call overhead, the reference speed, time spent so far (for resume)
- ``environment.json``  where the measurements were taken (CPU, threads, governor, versions)
- ``models/``           one LightGBM text model per kernel type + ``models.json``; ``own_correction.json``,
                        the profile's correction to networks timed alone (``_own``)
- ``metadata.json``     versions, counts and held-out accuracy of every regressor
- ``references.json``   the reference networks' latencies and fastest node times here (``_references``; for
                        the own correction and ``predict --calibrate``)
- ``adapted/``          corrections of this profile for other machines (``profile --adapt``, ``_adapt``)

The profile is resumable: each measured group is appended to the CSV before the next starts,
so an interrupted run continues from what it stored when started again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edgetune.errors import ConfigError
from edgetune.predict._base import ProfileError
from edgetune.predict._borders import check_on_chains, fit_borders, save_borders
from edgetune.predict._context import fit_context, kernel_costs_from_nodes
from edgetune.predict._drift import Retimer
from edgetune.predict._fusion import FusionRules, compute_nodes, detect_fusion, split_kernels
from edgetune.predict._graph import Graph, GraphBuilder, graph_to_dict
from edgetune.predict._hardware import GENERIC_HARDWARE, ProfileHardware
from edgetune.predict._kernel_row import KernelRow
from edgetune.predict._layout import layout_block
from edgetune.predict._machine import current_machine
from edgetune.predict._measure import GraphMeasurer, reference_graph
from edgetune.predict._profile_store import ProfileStore
from edgetune.predict._references import REFERENCE_COUNT, reference_config, set_reference_speed, store_references
from edgetune.predict._regress import bagged_ensemble, fit_flops_baseline, fit_kind, save_models
from edgetune.predict._sampling import HEAD_SHARE, extended_rng, sample_border_pair, sample_chain, sample_kernel, sample_network
from edgetune.targets import Target

SCHEMA_VERSION = 1
_INITIAL_PER_HEAD = 10
_ROUND = 24  # kernels per adaptive round (shared out by HEAD_SHARE)
_POOL = 150
_INITIAL_CHAINS = 8
_CHAINS_PER_ROUND = 2
_NETWORKS_PER_ROUND = 12  # runtimes with a per-node profiler learn in-network costs from these
_EXTENDED_PER_ROUND = 3  # ... and from these, of the sampler's extended stream
_MAX_FAILURES = 3
_INITIAL_BORDERS = 24
_REFERENCES_S = 60.0  # the reference networks timed alone at the end: two passes, up to six within this
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
    try:
        if measurer.reference is None:
            measurer.reference = reference_graph()
        return KernelProfiler(target, runtime, budget_min, folder, measurer, seed, progress, environment).run()
    finally:
        if own:
            measurer.close()


def _check_resumable(state: Optional[dict], env: dict, folder: ProfileStore) -> None:
    """ProfileError when the stored profile is another schema or was taken in another setup (not to be mixed)."""
    if state is None:
        return
    if state.get("schema") != SCHEMA_VERSION:
        raise ProfileError(f"{folder.state_path} is from profile schema {state.get('schema')}, this edgetune writes "
                           f"{SCHEMA_VERSION}; re-run with --fresh")
    old = state["environment"]
    changed = [k for k in ("cpu_model", "threads", "libraries") if old.get(k) != env.get(k)]
    if changed:
        raise ProfileError(f"the profile in {folder.path} was taken with different {', '.join(changed)}; "
                           "re-run with --fresh to start over for this setup")


class KernelProfiler:
    """One profiling run: resumes what ``folder`` holds, measures round after round (whole networks, border
    pairs, single kernels) until the budget is spent or Ctrl-C, then trains the regressors.

    Every round appends what it measured and the state before the next starts, so an interrupted run
    resumes from there.
    """

    rules: FusionRules
    hardware: ProfileHardware
    overhead_ms: float
    rows: list[KernelRow]
    chains: list[dict]
    borders: list[dict]
    rng: np.random.Generator
    heads: list[str]

    def __init__(self, target: Target, runtime: str, budget_min: float, folder: ProfileStore, measurer: GraphMeasurer,
                 seed: int, progress: Callable[[str], None], environment: Callable) -> None:
        self.target, self.runtime, self.budget_min, self.folder = target, runtime, budget_min, folder
        self.measurer, self.seed, self.progress = measurer, seed, progress
        self.env = environment(target, measurer.threads, measurer.versions())
        self.state = folder.read_json(folder.state_path)
        _check_resumable(self.state, self.env, folder)
        self.machine = current_machine() if target.transport == "local" else {}  # the CPU model and its ISA features
        self.start = time.perf_counter()
        self.spent_before = float(self.state["elapsed_s"]) if self.state else 0.0
        self.budget_s = budget_min * 60.0
        self.new_kernels = 0
        self.failures: dict[str, int] = {}

    def elapsed(self) -> float:
        """Seconds spent on this profile, earlier runs included."""
        return self.spent_before + time.perf_counter() - self.start

    def save_state(self, **extra: object) -> None:
        self.state = {**(self.state or {}), "schema": SCHEMA_VERSION, "environment": self.env,
                      "elapsed_s": round(self.elapsed(), 2), "runtime": self.runtime, "target": self.target.name,
                      "threads": self.measurer.threads, "machine": self.machine, **extra}
        self.folder.write_json(self.folder.state_path, self.state)

    def run(self) -> ProfileResult:
        try:
            rules = _calibrate(self.folder, self.measurer, self.progress, self.save_state, self.env)
        except KeyboardInterrupt:
            if self.state is not None:
                self.save_state()
            return ProfileResult(self.folder.path, len(self.folder.rows()), 0, self.elapsed(), FusionRules(), {},
                                 interrupted=True)
        self._resume(rules)
        interrupted = False
        while not interrupted and self.elapsed() < self.budget_s:
            interrupted = self.measure_round()
        if interrupted:
            self.save_state()
            return ProfileResult(self.folder.path, len(self.rows), self.new_kernels, self.elapsed(), self.rules, {},
                                 interrupted=True)
        return self.finish()

    def _resume(self, rules: FusionRules) -> None:
        """What earlier runs measured, and a random stream that continues from there."""
        self.rules = rules
        self.overhead_ms = float(self.state["overhead_ms"])  # type: ignore[index]
        self.hardware = ProfileHardware.for_target(self.target)
        self.rows = [KernelRow.from_csv(row) for row in self.folder.rows()]
        self.chains = self.folder.chains()
        self.borders = self.folder.borders()
        self.rng = np.random.default_rng(self.seed + 7919 * len(self.rows) + 104729 * len(self.chains))
        self.heads = [h for h in HEAD_SHARE if h not in (self.state or {}).get("uncosted", [])]
        self.retimer = Retimer.resumed(self.chains, (self.state or {}).get("retimed"), self.elapsed)

    def measure_round(self) -> bool:
        """Networks, border pairs, then kernels; True when Ctrl-C stopped the round."""
        stopped = self.network_round()
        stopped = self.border_round() or stopped
        self.save_state(retimed=self.retimer.counts())
        if stopped:
            return True
        stopped = self.kernel_round(self.next_kernels())
        self.progress(f"{len(self.rows)} kernels measured, {self.elapsed() / 60:.1f} of {self.budget_min:g} min")
        return stopped

    def network_round(self) -> bool:
        """Whole random networks (see ``_measure_networks``), appended to chains.jsonl."""
        new_chains, interrupted = _measure_networks(self.measurer, self.rng, self.rules, len(self.chains), self.seed,
                                                    self.retimer)
        self.folder.append_lines(self.folder.chains_path, new_chains)
        self.chains += new_chains
        return interrupted

    def border_round(self) -> bool:
        """Pairs of one kernel and the same kernel repeated: what a border between kernels costs."""
        want = _INITIAL_BORDERS if len(self.borders) < _INITIAL_BORDERS else _BORDERS_PER_ROUND
        pairs = [sample_border_pair(self.rng, self.rules, len(self.borders) + i) for i in range(want)]
        timings, stopped = self.measurer.measure([g for _group, one, many in pairs for g in (one, many)])
        new_borders = [{"group": group, "in_elems": one.ops[0].in_elems, "out_elems": one.ops[-1].out_elems,
                        "single_ms": self._latency_ms(a), "repeated_ms": self._latency_ms(b),
                        "repeats": len(many.ops) // max(len(one.ops), 1)}
                       for (group, one, many), a, b in zip(pairs, timings[0::2], timings[1::2]) if not (a.error or b.error)]
        self.folder.append_lines(self.folder.borders_path, new_borders)
        self.borders += new_borders
        return stopped

    def next_kernels(self) -> list[Graph]:
        """Kernels to measure next: the initial set of each head first, then where the regressors are least sure."""
        counts = {h: sum(1 for r in self.rows if r.head == h) for h in self.heads}
        batch: list[Graph] = []
        lacking = [h for h in self.heads if counts[h] < _INITIAL_PER_HEAD]
        if lacking:
            for h in lacking:
                batch += [sample_kernel(h, self.rng, self.rules, len(self.rows) + len(batch) + i)
                          for i in range(_INITIAL_PER_HEAD - counts[h])]
        else:
            for h in self.heads:
                want = max(1, int(round(_ROUND * HEAD_SHARE[h])))
                batch += _most_uncertain(h, self.rows, self.rng, self.rules, want, len(self.rows) + len(batch),
                                         self.hardware)
        return batch

    def kernel_round(self, batch: list[Graph]) -> bool:
        """Time ``batch`` a group at a time, each group's rows stored before the next; True on Ctrl-C."""
        for chunk_start in range(0, len(batch), self.measurer.interleave):
            if self.elapsed() >= self.budget_s:
                break
            chunk = batch[chunk_start:chunk_start + self.measurer.interleave]
            timings, interrupted = self.measurer.measure(chunk)
            new_rows = [KernelRow.measured(len(self.rows) + i, g, t, self._latency_ms(t), self.rules)
                        for i, (g, t) in enumerate(zip(chunk, timings)) if not t.error]
            self._count_failures(chunk, timings)
            self.folder.append([row.to_csv() for row in new_rows])
            self.rows += new_rows
            self.new_kernels += len(new_rows)
            self.save_state()
            if interrupted:
                return True
        return False

    def _count_failures(self, chunk: list[Graph], timings: list) -> None:  # type: ignore[type-arg]
        """A head whose kernels fail _MAX_FAILURES times cannot run here: it is left uncosted."""
        for g, t in zip(chunk, timings):
            if not t.error:
                continue
            head = split_kernels(g, self.rules)[0].head.kind
            self.failures[head] = self.failures.get(head, 0) + 1
            if self.failures[head] >= _MAX_FAILURES and head in self.heads:
                self.heads.remove(head)
                self.progress(f"{head} kernels cannot run on {self.target.name}/{self.runtime} ({t.error[:120]}); not costed")
                self.save_state(uncosted=sorted(set(self.state.get("uncosted", [])) | {head}))  # type: ignore[union-attr]

    def _latency_ms(self, timing) -> float:  # type: ignore[no-untyped-def]
        return max(timing.latency_ms - self.overhead_ms, self.hardware.floor_ms)

    def _references_kept(self) -> bool:
        """Whether the profile holds reference times of this machine: a resumed profile that measured
        nothing new keeps them, since they anchor its own correction and calibration to the minutes its
        measurements were taken in (re-timed five hours later on a drifting VM, in a slow minute, they cost
        a profile 15 points of networks within 10% on the accuracy benchmark). A corrupt file is not kept:
        timing the references again rewrites it, as before."""
        from edgetune.predict._calibrate import stored_references

        try:
            return stored_references(self.folder.path, None, self.machine) is not None
        except ProfileError:
            return False

    def finish(self) -> ProfileResult:
        """Train the regressors on everything measured; on a local target also time the reference networks."""
        self.progress("training regressors")
        metadata = train(self.folder.path, self.rows, self.chains, self.borders, self.rules, self.state,  # type: ignore[arg-type]
                         self.env, self.hardware)
        self.save_state()
        if self.new_kernels == 0 and self._references_kept():
            self.progress("nothing new measured: the reference networks keep the times taken with the measurements")
            anchor_references(self.folder.path)
        elif self.target.transport == "local":  # kept for `predict --calibrate`: today's speed against the profile's
            self.progress("timing the reference networks alone (for the profile's own correction and `predict --calibrate`)")
            # as adapting times them (and the benchmark its networks): longer sessions, no reference graph
            with self.measurer.timing_with(reference_config(3 * 60.0, REFERENCE_COUNT, passes=4), 4):
                store_references(self.folder.path, self.measurer.measure, self.measurer.threads, current_machine(),
                                 nodes=self.measurer.profiles_nodes, budget_s=_REFERENCES_S)
            anchor_references(self.folder.path)
        return ProfileResult(self.folder.path, len(self.rows), self.new_kernels, self.elapsed(), self.rules, metadata)


def _measure_networks(measurer: GraphMeasurer, rng: np.random.Generator, rules: FusionRules,
                      stored: int, seed: int, retimer: Retimer) -> tuple[list[dict], bool]:
    """One round of whole random networks, end to end; with a per-node profiler also each kernel's
    cost inside them (``_context.attribute_nodes``). Returns the records and whether Ctrl-C stopped it.
    Groups timed while other load slowed the machine are timed again (``_drift.Retimer``)."""
    in_context = measurer.profiles_nodes
    want = _INITIAL_CHAINS if stored < _INITIAL_CHAINS else (_NETWORKS_PER_ROUND if in_context else _CHAINS_PER_ROUND)
    graphs = [sample_network(rng, stored + i) if in_context and i % 3 else sample_chain(rng, rules, stored + i)
              for i in range(want)]
    if in_context:  # fire blocks, swish, flattened FC heads: drawn from their own stream, after the first's
        extra = extended_rng(seed, stored)
        graphs += [sample_network(extra, stored + want + i, extended=True) for i in range(_EXTENDED_PER_ROUND)]
    timings, interrupted = retimer.measure(lambda group: measurer.measure(group, nodes=in_context), graphs,
                                           measurer.interleave)
    records = []
    for i, (graph, timing) in enumerate(zip(graphs, timings)):
        if timing.error:
            continue
        record = {"id": stored + i, "graph": graph_to_dict(graph), "latency_ms": timing.latency_ms,
                  "reference_ms": timing.reference_ms, "median_ms": timing.median_ms, "time": round(time.time(), 1)}
        if timing.nodes:
            record.update(kernel_costs_from_nodes(graph, split_kernels(graph, rules), timing.nodes))
            record["nodes"] = len(timing.nodes)
            # kept, so a retrain attributes them again with whatever the attribution then knows
            record["node_times"] = [[n[0], n[1], round(n[2], 6), round(n[3], 6)] for n in timing.nodes]
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

    node_count: dict[int, int] = {}  # id(graph) -> compute nodes its last timing ran (a runtime with a per-node profiler)

    def timed(graphs):  # type: ignore[no-untyped-def]
        result, stop = measurer.measure(graphs, nodes=measurer.profiles_nodes)
        if stop:
            raise KeyboardInterrupt
        node_count.update({id(g): compute_nodes(t.nodes) for g, t in zip(graphs, result) if t.nodes})
        return [t.normalized_ms(state.get("reference_ms")) for t in result]  # type: ignore[union-attr]

    counts = (lambda graphs: [node_count.get(id(g)) for g in graphs]) if measurer.profiles_nodes else None
    rules = detect_fusion(timed, overhead_ms=float(state["overhead_ms"]), progress=progress,  # type: ignore[index]
                          node_counts=counts)
    folder.write_json(folder.fusion_path, rules.to_dict())
    save_state()
    return rules


def _matrix(rows: list[KernelRow], rules: FusionRules, hardware: ProfileHardware) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([r.features(rules, hardware) for r in rows], dtype=float),
            np.array([r.latency_ms for r in rows], dtype=float))


def _raw_latencies(rows: list[KernelRow], overhead_ms: float, floor_ms: float) -> None:
    """Kernel latency = fastest run minus the per-call overhead, not rescaled by the reference graph.

    Rescaling by a reference graph timed beside each group was tried: on this VM the small
    reference's own minimum wobbled more than the machine's speed, so it added noise; its timing
    stays in the CSV (reference_ms) for analysis.
    """
    for row in rows:
        row.latency_ms = max(row.min_ms - overhead_ms, floor_ms)


def _most_uncertain(head: str, rows: list[KernelRow], rng: np.random.Generator, rules: FusionRules, want: int,
                    first_index: int, hardware: ProfileHardware) -> list[Graph]:
    """``want`` new kernels of ``head``: a quarter at random, of the rest half next to the measured kernels
    the model errs on most (out of bag), half where a bagged ensemble disagrees most."""
    mine = [r for r in rows if r.head == head]
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
    metadata = train(store.path, [KernelRow.from_csv(row) for row in store.rows()], store.chains(), store.borders(),
                     FusionRules.from_dict(fusion), state, state["environment"], hardware)
    anchor_references(store.path)
    return metadata


def anchor_references(folder: Path) -> None:
    """Fit the profile's own correction on its references' node times, where it stored them (``_own``), then
    record the references' level against the profile's predictions of them (for calibration)."""
    from edgetune.predict._own import fit_own_correction
    from edgetune.predict._predictors import KernelPredictor
    from edgetune.predict._references import REFERENCES_FILE

    if not (Path(folder) / REFERENCES_FILE).exists():  # a remote or simulated target's profile keeps none
        return
    fit_own_correction(folder)
    predictor = KernelPredictor(folder)
    set_reference_speed(folder, lambda graphs: [e.total_ms for e in predictor.predict_many(graphs)])


def train(folder: Path, rows: list[KernelRow], chains: list[dict], borders: list[dict], rules: FusionRules, state: dict,
          env: dict, hardware: ProfileHardware = GENERIC_HARDWARE) -> dict:
    """Fit one regressor per head kind, the in-network correction, the FLOPs baseline; write models/ + metadata.json.

    ``hardware``: the target's terms beyond the generic features (a systolic array's cycles, the latency floor).
    """
    import lightgbm
    import sklearn

    if not rows:
        raise ProfileError(f"no kernel measurements in {folder}; give the profile a larger --budget")
    _raw_latencies(rows, float(state["overhead_ms"]), hardware.floor_ms)
    if not hardware.layout_block:  # the blocked layout of the profiled machine's runtime (``_layout``)
        hardware = replace(hardware, layout_block=layout_block(state["runtime"], (state.get("machine") or {}).get("isa", [])))
    models, accuracy = [], {}
    for head in sorted({r.head for r in rows}):
        mine = [r for r in rows if r.head == head]
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
    flops = fit_flops_baseline(np.array([r.macs for r in rows]), np.array([r.latency_ms for r in rows]))
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
    if state.get("retimed"):
        metadata["retimed"] = state["retimed"]
    if hardware.to_metadata():  # a CPU profile without a blocked layout has no hardware terms
        metadata["hardware"] = {**hardware.to_metadata(),
                                "note": "systolic: the array whose stall-free cycles are a feature and a baseline term; "
                                        "floor_ms: the shortest latency the profile resolves (one clock cycle when simulated); "
                                        "layout_block: the channel block of the runtime's blocked layout (NCHWc)"}
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


def fit_summary(metadata: dict) -> list[str]:
    """What a profile's fit says after profiling or retraining: the held-out kernels, the random kernel chains,
    the profiled networks, the machine's speed while profiling and how much of it was timed under other load."""
    chains = metadata.get("chains_check") or {}
    lines = [held_out_summary(metadata)]
    if chains.get("chains"):
        lines.append(f"check on {chains['chains']} random kernel chains measured while profiling (not fitted on): "
                     f"{chains['within_10pct']:.0%} within 10%, median error {chains['median_error']:+.1%}")
    return lines + [line for line in (networks_summary(metadata), drift_summary(metadata), disturbed_summary(metadata))
                    if line]


def networks_summary(metadata: dict) -> Optional[str]:
    """One line on the whole profiled networks predicted by models that never saw them (3 folds), or None
    without in-network measurements. The number to read first: on the AMD VM on 2026-12-04, three profiles
    that put 72%, 65% and 61% of their own networks within 10% put 90%, 80% and 77% of the accuracy
    benchmark's repeatable networks there."""
    check = (metadata.get("in_network") or {}).get("networks_check") or {}
    if not check.get("networks"):
        return None
    return (f"check on {check['networks']} profiled networks, each predicted by models fitted without it: "
            f"{check['within_10pct']:.0%} within 10%, median error {check['median_error']:+.1%}")


def disturbed_summary(metadata: dict) -> Optional[str]:
    """One line on how many profiled networks were timed while other load slowed the machine (``_drift``),
    and, past ``DISTURBED_WARN``, what to do about it; None when the profile has no reference times."""
    disturbed = (metadata.get("in_network") or {}).get("disturbed")
    if not disturbed:
        return None
    line = (f"{disturbed['share']:.0%} of {disturbed['networks']} profiled networks were timed while other load slowed "
            f"this machine (their reference graph over {disturbed['over']:.0%} above its median)")
    retimed = metadata.get("retimed") or {}
    if retimed.get("groups"):
        line = (f"{retimed['groups']} groups of networks timed while the machine ran slow were timed again "
                f"({retimed['seconds']:.0f} s; {retimed['still_slow']} still slow after up to {retimed['tries']} tries); "
                f"after that, {line}")
    if not disturbed["warn"]:
        return line
    target, runtime = metadata.get("target", "TARGET"), metadata.get("runtime", "RUNTIME")
    return (f"{line}: a profile taken in a quieter hour predicts better; run `edgetune profile --target {target} "
            f"--runtime {runtime} --fresh` again when the machine is idle")


def drift_summary(metadata: dict) -> Optional[str]:
    """One line on how the machine's speed moved while it was profiled, or None when it was not traced."""
    drift = (metadata.get("in_network") or {}).get("drift")
    if not drift:
        return None
    return (f"machine speed while profiling: from {1 / drift['slowest']:.0%} to {1 / drift['fastest']:.0%} of its median "
            f"(traced over {drift['networks']} networks, {drift['end']:.2f}x the median time at the end); "
            "latencies fitted at the median speed")
