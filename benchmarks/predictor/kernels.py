"""Where the predictor errs inside the benchmark's networks: per kernel kind and family.

    PYTHONPATH=. .venv/bin/python benchmarks/predictor/kernels.py [--profiles-dir DIR] [--limit N]

Times every network of the accuracy benchmark (the same generators and seeds as ``run.py``) once
more, end to end and through the runtime's per-node profiler, attributes the nodes to the
predictor's kernels as profiling does, and compares each kernel's predicted in-network cost with
its measured one. Tells whether a family's error is in its kernels (which kind, by how much) or in
the end-to-end model that maps their sum to the network's latency. Writes
benchmarks/results/predictor_kernels_<runtime>_<time>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from heldout import generate_heldout  # noqa: E402
from networks import generate  # noqa: E402
from run import family  # noqa: E402

from edgetune.predict import GraphMeasurer, KernelPredictor, profile_folder  # noqa: E402
from edgetune.predict._context import attribute_nodes, counted_nodes, network_ms  # noqa: E402
from edgetune.predict._fusion import split_kernels  # noqa: E402
from edgetune.predict._measure import NETWORK_CONFIG  # noqa: E402
from edgetune.targets import load_target  # noqa: E402


def measure(target, runtime: str, threads: int, graphs: list) -> list:  # type: ignore[no-untyped-def]
    with GraphMeasurer(target, runtime, threads, config=NETWORK_CONFIG, interleave=4) as measurer:
        timings, stopped = measurer.measure(graphs, nodes=True)
    if stopped:
        raise SystemExit("interrupted")
    return timings


def compare(predictor: KernelPredictor, graphs: list, timings: list) -> tuple[list[dict], list[dict]]:
    """Per kernel (family, kind, channels, predicted, measured) and per network (predicted, measured, sums)."""
    split = [split_kernels(g, predictor.rules) for g in graphs]
    found, nodes = predictor.in_network.costs(graphs, split) if predictor.in_network is not None else ({}, {})
    latency, _how = predictor._kernel_costs(split, found)
    rows, nets = [], []
    for gi, (graph, kernels, timing) in enumerate(zip(graphs, split, timings)):
        if timing.error or not timing.nodes:
            continue
        measured = attribute_nodes(graph, kernels, [(*n[:2], n[3]) for n in timing.nodes])
        if measured is None:
            continue
        predicted = [latency[(gi, ki)] for ki in range(len(kernels))]
        for kernel, p, m in zip(kernels, predicted, measured):
            rows.append({"network": graph.name, "family": family(graph.name), "kind": kernel.kind,
                         "head": kernel.head.kind, "cin": kernel.head.cin, "cout": kernel.head.cout,
                         "hw": kernel.head.hout, "k": kernel.head.kernel, "stride": kernel.head.stride, "groups": kernel.head.groups,
                         "macs": kernel.head.macs, "predicted_ms": p, "measured_ms": m})
        model = predictor.network_model
        count = counted_nodes(model, [nodes.get((gi, ki), 1.0) for ki in range(len(kernels))])
        nets.append({"network": graph.name, "family": family(graph.name), "kernels": len(kernels),
                     "measured_ms": timing.latency_ms, "node_sum_ms": float(sum(measured)),
                     "predicted_sum_ms": float(sum(predicted)),
                     "from_measured_sum_ms": network_ms(model, measured, counted_nodes(model, [float(v > 0) for v in measured])) if model else None,
                     "predicted_ms": network_ms(model, predicted, count) if model else None})
    return rows, nets


def summarize(rows: list[dict], nets: list[dict]) -> dict:
    out: dict = {"per_family": {}}
    for fam in sorted({n["family"] for n in nets}):
        mine = [n for n in nets if n["family"] == fam]
        rel = np.array([n["predicted_ms"] / n["measured_ms"] - 1 for n in mine])
        rel_m = np.array([n["from_measured_sum_ms"] / n["measured_ms"] - 1 for n in mine])
        kinds = {}
        for kind in sorted({r["head"] for r in rows if r["family"] == fam}):
            k = [r for r in rows if r["family"] == fam and r["head"] == kind]
            p, m = sum(r["predicted_ms"] for r in k), sum(r["measured_ms"] for r in k)
            kinds[kind] = {"kernels": len(k), "predicted_ms": round(p, 4), "measured_ms": round(m, 4),
                           "error": round(p / m - 1, 3) if m > 0 else None}
        out["per_family"][fam] = {"networks": len(mine), "median_error": round(float(np.median(rel)), 3),
                                  "within_10pct": round(float(np.mean(np.abs(rel) <= 0.1)), 3),
                                  "end_to_end_from_measured_nodes_median_error": round(float(np.median(rel_m)), 3),
                                  "within_10pct_from_measured_nodes": round(float(np.mean(np.abs(rel_m) <= 0.1)), 3),
                                  "kinds": kinds}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="host-cpu")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--profiles-dir", type=Path, default=None)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--heldout-count", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep-timings", type=Path, default=None, help="also pickle the raw timings there")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    target = load_target(args.target)
    predictor = KernelPredictor(profile_folder(target.name, args.runtime, args.profiles_dir))
    graphs = generate(args.count, args.seed) + generate_heldout(args.heldout_count, args.seed + 1)
    timings = measure(target, args.runtime, predictor.threads, graphs)
    if args.keep_timings:
        import pickle
        args.keep_timings.write_bytes(pickle.dumps(timings))
    rows, nets = compare(predictor, graphs, timings)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report = {"benchmark": "predictor-kernels", "time": stamp, "profile": str(predictor.folder),
              **summarize(rows, nets), "networks": nets, "kernels": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"predictor_kernels_{args.runtime}_{stamp}.json"
    path.write_text(json.dumps(report, indent=1))
    for fam, s in report["per_family"].items():
        print(fam, {k: v for k, v in s.items() if k != "kinds"})
        for kind, k in s["kinds"].items():
            print(f"   {kind:10s} n={k['kernels']:4d} pred {k['predicted_ms']:8.4f} meas {k['measured_ms']:8.4f} err {k['error']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
