"""Reference networks: a small fixed set timed on a machine and kept with its profile.

They serve twice. ``profile --adapt`` times them on a new machine and fits how its speed differs,
per kernel group, from the machine a profile was taken on (``_adapt``). And a profile keeps their
latencies, so ``predict --calibrate`` (and a search, once per study) re-times a few in seconds and
rescales for today's speed of the same machine (``_calibrate``).

The set is fixed (its own seed, never a profiling sample or a benchmark network): six probes that
each load mostly one kernel group (small and compute-bound plain convs, depthwise convs, small and
memory-bound fully connected layers, elementwise and data-moving ops), so every group is covered at
both ends of the compute/memory range, and network-shaped stacks with inverted residuals,
squeeze-excite, grouped and shuffle blocks. Each is timed in passes of alternating order (fastest
of >= 30 runs each, every session alone in its worker process; two passes, more where the budget
allows); the lowest is kept, and how far the passes disagree is the noise a later rescale is judged
against. Adapting also runs each through the runtime's per-node profiler, for its kernels' costs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgetune.bench import BenchConfig
from edgetune.errors import ConfigError
from edgetune.predict._graph import Graph, GraphBuilder, graph_from_dict, graph_to_dict

REFERENCE_SEED = 20261203
REFERENCE_COUNT = 20
_MAX_REFERENCE_MACS = 40e6  # about 5 ms at one thread on a slow core: the set stays within minutes
REFERENCES_FILE = "references.json"
SCHEMA = 1


def _probes() -> list[Graph]:
    """Networks that each spend most of their time in one kernel group."""
    b = GraphBuilder("ref-convs", (1, 16, 32, 32))
    x = "input"
    for cout in (32, 48, 48, 64):
        x = b.relu(b.bn(b.conv(x, cout, 3, 1)))
    convs = b.build(x)
    b = GraphBuilder("ref-depthwise", (1, 96, 40, 40))
    x = "input"
    for k in (3, 5, 7, 3, 5):
        x = b.relu6(b.bn(b.dwconv(x, k, 1)))
    depthwise = b.build(x)
    b = GraphBuilder("ref-dense", (1, 1024, 1, 1))
    x = b.relu(b.fc("input", 1024))
    dense = b.build(b.fc(b.relu(b.fc(x, 512)), 1000))
    b = GraphBuilder("ref-elementwise", (1, 64, 28, 28))
    x = b.add("input", b.relu("input"))
    x = b.scale(b.mul(x, b.sigmoid(x)))
    x = b.shuffle(b.concat([b.slice(x, 32), b.slice(x, 32)]), 2)
    moving = b.build(b.hswish(b.pad(x, 1)))
    # the other end of the range: convs many times over their data (compute-bound), and
    # fully connected layers with millions of weights (memory-bound)
    b = GraphBuilder("ref-bigconvs", (1, 32, 56, 56))
    x = "input"
    for cout, stride in ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)):
        x = b.relu(b.bn(b.conv(x, cout, 3, stride)))
    bigconvs = b.build(b.gap(x))
    b = GraphBuilder("ref-bigdense", (1, 256, 4, 4))
    x = b.relu(b.fc("input", 2048))
    bigdense = b.build(b.fc(b.relu(b.fc(x, 1024)), 1000))
    return [convs, depthwise, dense, moving, bigconvs, bigdense]


def reference_networks(count: int = REFERENCE_COUNT) -> list[Graph]:
    """The fixed reference set: the probes, then network-shaped stacks drawn from REFERENCE_SEED."""
    from edgetune.predict._sampling import sample_network

    if not 4 <= count <= 20:
        raise ConfigError(f"the reference set has 4 to 20 networks, got {count}")
    graphs = _probes()
    rng = np.random.default_rng(REFERENCE_SEED)
    while len(graphs) < count:
        graph = sample_network(rng, len(graphs))
        if graph.macs <= _MAX_REFERENCE_MACS:
            graphs.append(Graph(f"ref-net{len(graphs)}", graph.input_shape, graph.ops))
    return graphs[:count]


def reference_config(budget_s: float, networks: int, passes: int = 2) -> BenchConfig:
    """Harness settings that time ``networks`` ``passes`` times within about ``budget_s`` (>= 30 runs each)."""
    per_session = min(1.5, max(0.15, 0.6 * budget_s / max(networks * passes, 1)))
    return BenchConfig(warmup_runs=10, warmup_s=min(0.1, per_session / 3), min_repeats=30, budget_s=per_session, ci_rel=0.01)


def measure_references(measure: Callable[..., tuple[list[Any], bool]], graphs: Sequence[Graph], passes: int = 2,
                       nodes: bool = False, budget_s: float = 0.0, max_passes: int = 6) -> tuple[list[dict[str, Any]], bool]:
    """Time ``graphs`` in ``passes`` passes of alternating order, and more (up to ``max_passes``) while the
    next one still fits in ``budget_s``; records keep the lowest fastest-run and each pass.

    ``measure`` is a GraphMeasurer's ``measure``. With ``nodes`` each record also keeps, per pass, the
    runtime's node times (``nodes``; in memory only, not in ``references_document``). Returns
    (records, interrupted); a network that failed to run is left out.
    """
    runs: list[list[float]] = [[] for _ in graphs]
    profiled: list[list[tuple]] = [[] for _ in graphs]
    started, done = time.perf_counter(), 0
    while done < passes or (done < max_passes and (time.perf_counter() - started) * (done + 1) / done <= budget_s):
        order = list(range(len(graphs)))[:: -1 if done % 2 else 1]
        timings, stopped = measure([graphs[i] for i in order], nodes=nodes)
        if stopped:
            return [], True
        for i, timing in zip(order, timings):
            runs[i].append(0.0 if timing.error else float(timing.latency_ms))
            profiled[i].append(tuple(timing.nodes))
        done += 1
    records = []
    for index, (graph, found) in enumerate(zip(graphs, runs)):
        if found and min(found) > 0:
            records.append({"name": graph.name, "index": index, "graph": graph_to_dict(graph),
                            "latency_ms": round(min(found), 6), "passes_ms": [round(v, 6) for v in found],
                            **({"nodes": profiled[index]} if nodes else {})})
    return records, False


def pass_disagreement(records: Sequence[dict[str, Any]]) -> float:
    """Median relative difference between a reference's first two passes (opposite orders): the measurement's
    own noise here, for judging one re-timing against the stored one (the range over more passes would overstate it)."""
    gaps = [max(r["passes_ms"][:2]) / min(r["passes_ms"][:2]) - 1.0 for r in records if len(r.get("passes_ms", [])) > 1]
    return float(np.median(gaps)) if gaps else 0.0


def references_document(records: list[dict[str, Any]], machine: dict[str, Any], threads: int) -> dict[str, Any]:
    """What a profile (or an adapted profile) keeps of its reference networks."""
    kept = [{k: v for k, v in r.items() if k != "nodes"} for r in records]
    return {"schema": SCHEMA, "machine": machine, "threads": threads, "networks": kept,
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "pass_disagreement": round(pass_disagreement(records), 4),
            "statistic": "fastest of >= 30 runs, each session alone in its worker process; passes in alternating "
                         "order (two or more), the lowest kept"}


def reference_graphs(document: dict[str, Any]) -> list[Graph]:
    return [graph_from_dict(r["graph"]) for r in document["networks"]]


def read_references(path: Path) -> Optional[dict[str, Any]]:
    """The reference document at ``path`` (a profile's references.json or an adapted profile), or None."""
    from edgetune.predict._base import ProfileError

    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path} is corrupt ({exc.msg}); delete it and re-run `edgetune profile --adapt`") from None
    document = data.get("references", data)
    if not isinstance(document, dict) or not isinstance(document.get("networks"), list):
        raise ProfileError(f"{path} holds no reference networks; delete it and re-run `edgetune profile --adapt`")
    return document


def fastest_nodes(passes: Sequence[Sequence[Sequence[Any]]]) -> list[tuple[str, str, float, float]]:
    """One network's node times over several passes, each node at its fastest of them (in the first pass's order)."""
    best: dict[str, float] = {}
    for nodes in passes:
        for node in nodes:
            best[node[0]] = min(best.get(node[0], float("inf")), float(node[3]))
    first = next((nodes for nodes in passes if nodes), ())
    return [(str(n[0]), str(n[1]), round(best[n[0]], 6), round(best[n[0]], 6)) for n in first]


def store_references(folder: Path, measure: Callable[..., tuple[list[Any], bool]], threads: int,
                     machine: dict[str, Any], nodes: bool = False, budget_s: float = 0.0) -> bool:
    """Time the reference set and keep it in ``folder``/references.json (a profile's own, for calibration).

    With ``nodes`` (a runtime with a per-node profiler) also in more passes while ``budget_s`` allows (else two),
    keeping each network's fastest node times (``fastest_nodes``), which the profile's own correction is
    fitted on (``_profile.anchor_references``). Returns False when Ctrl-C stopped it (the profile stays
    usable; it just cannot be calibrated).
    """
    records, stopped = measure_references(measure, reference_networks(), nodes=nodes, budget_s=budget_s if nodes else 0.0)
    if stopped or not records:
        return False
    document = references_document(records, machine, threads)
    if nodes:
        for kept, record in zip(document["networks"], records):
            kept["node_min_ms"] = [list(n[:3]) for n in fastest_nodes(record["nodes"])]
    _write(Path(folder) / REFERENCES_FILE, document)
    return True


def _write(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` with ``document`` in one step: a crash leaves the old file or the new, never half."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2))
    tmp.replace(path)


def set_reference_speed(folder: Path, predict_ms: Callable[[Sequence[Graph]], Sequence[float]]) -> None:
    """Record in ``folder``/references.json how the references' stored latencies stand to the profile's own
    predictions of them (``speed_factor``, the median ratio over the set; 1.07: timed 7% slower than the
    profile predicts), so a later calibration is against the speed the profile describes.

    That speed is the machine's median while profiling (``_drift``), in the harness profiling times its
    networks with; the references are timed at the end, each alone in its worker. On this VM the two
    differed by -6% to +8% between profiles, as much as a day's drift. No factor with fewer than 4 references.
    """
    path = Path(folder) / REFERENCES_FILE
    document = read_references(path)
    if document is None:
        return
    predicted = predict_ms(reference_graphs(document))
    ratios = [r["latency_ms"] / p for r, p in zip(document["networks"], predicted) if p > 0]
    document.pop("speed_factor", None)
    if len(ratios) >= 4:
        document["speed_factor"] = round(float(np.median(ratios)), 4)
    _write(path, document)
