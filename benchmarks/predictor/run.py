"""Predictor accuracy benchmark: profile a target, then measure and predict >= 100 unseen networks.

    .venv/bin/python benchmarks/predictor/run.py --target host-cpu --runtime onnxruntime --profile-budget 25

Prints and writes benchmarks/results/predictor_<runtime>_<time>.json and a predicted-vs-measured
scatter plot (PNG) beside it. Reports, for the kernel predictor and two FLOPs baselines (per kernel
a + b x MACs on the profile's kernels; per network a + b x MACs on the profile's networks): share of
networks within +-5% / +-10%, RMSE, mean absolute percentage error, against the measured latency
(fastest of >= 30 runs, what the profile learns; beside it: against the median, and against the
minimum rescaled by a reference graph timed interleaved with every group). Also: how well
two measurements of the same network agree (the ceiling any predictor can reach on this machine)
and how the predictors do on the networks whose two measurements agree within 5% (``--repeat``
sets how many are measured twice; ``--repeat 120`` re-measures all),
prediction time per network, the reference graph's spread over the run, and the profiling time.

On a simulated target (``simulated: true``, e.g. npu-edgetpu-like with scalesim) the ground truth is
the simulator's deterministic latency, never a measurement: the JSON and the plot say "simulated".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine_load import cpu_snapshot, other_load  # noqa: E402
from networks import generate  # noqa: E402

from edgetune.predict import FlopsPredictor, GraphMeasurer, KernelPredictor, profile, profile_folder, reference_graph  # noqa: E402
from edgetune.predict._measure import NETWORK_CONFIG  # noqa: E402
from edgetune.targets import load_target  # noqa: E402


def accuracy(pred: np.ndarray, meas: np.ndarray) -> dict:
    rel = pred / meas - 1.0
    return {
        "within_5pct": round(float(np.mean(np.abs(rel) <= 0.05)), 4),
        "within_10pct": round(float(np.mean(np.abs(rel) <= 0.10)), 4),
        "rmse_ms": round(float(np.sqrt(np.mean((pred - meas) ** 2))), 5),
        "rmspe": round(float(np.sqrt(np.mean(rel ** 2))), 4),
        "mape": round(float(np.mean(np.abs(rel))), 4),
        "bias": round(float(np.median(rel)), 4),
    }


def reproducible(pk: np.ndarray, pf: np.ndarray, meas: np.ndarray, meas2: np.ndarray, agree: float = 0.05) -> Optional[dict]:
    """The predictors scored only on networks whose two measurements agree within ``agree``, against
    the mean of the two: how well they do where the measurement itself can be trusted."""
    if not len(meas2):
        return None
    first = meas[: len(meas2)]
    keep = np.abs(meas2 / first - 1.0) <= agree
    if not keep.any():
        return {"networks": 0, "agree_within": agree}
    both = (first[keep] + meas2[keep]) / 2.0
    return {"networks": int(keep.sum()), "of": len(meas2), "agree_within": agree,
            "kernel": accuracy(pk[: len(meas2)][keep], both), "flops": accuracy(pf[: len(meas2)][keep], both)}


def network_flops_baseline(folder: Path) -> Optional[tuple[float, float]]:
    """A stronger FLOPs baseline than the per-kernel one: network latency = a + b x MACs, fitted
    (least squares on relative error) on the whole networks the profile measured."""
    from edgetune.predict._graph import graph_from_dict

    path = folder / "chains.jsonl"
    if not path.exists():
        return None
    chains = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [(graph_from_dict(c["graph"]).macs, c["latency_ms"]) for c in chains if c.get("latency_ms", 0) > 0]
    if len(rows) < 10:
        return None
    macs, ms = np.array(rows, dtype=float).T
    terms = np.stack([np.ones_like(macs), macs], axis=1) / ms[:, None]
    (a, b), *_ = np.linalg.lstsq(terms, np.ones_like(ms), rcond=None)
    return float(a), float(b)


def scatter(path: Path, measured: np.ndarray, series: dict[str, np.ndarray], title: str, truth: str = "measured") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    lo, hi = measured.min() * 0.8, measured.max() * 1.25
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.9", label="+-10%")
    for (name, pred), marker in zip(series.items(), "ox^"):
        ax.scatter(measured, pred, s=14, marker=marker, label=name, alpha=0.8)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel=f"{truth} latency (ms)",
           ylabel="predicted latency (ms)", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="host-cpu")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--profile-budget", type=float, default=25.0, help="minutes; 0 = use the existing profile")
    parser.add_argument("--profiles-dir", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true", help="discard the stored profile first (another machine's)")
    parser.add_argument("--repeat", type=int, default=30, help="networks measured twice (measurement agreement)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    target = load_target(args.target)
    truth = "simulated" if target.simulated else "measured"  # a simulator's latency is never a measurement
    folder = profile_folder(target.name, args.runtime, args.profiles_dir)
    load = cpu_snapshot()
    profile_s = None
    if args.profile_budget > 0:
        started = time.perf_counter()
        result = profile(target, args.runtime, args.profile_budget, args.profiles_dir, fresh=args.fresh,
                         progress=lambda m: print(f"[profile] {m}", flush=True))
        profile_s = time.perf_counter() - started
        print(f"profiled {result.kernels} kernels in {result.elapsed_s / 60:.1f} min (this run {profile_s / 60:.1f} min)")
    kernel, flops = KernelPredictor(folder), FlopsPredictor(folder)

    graphs = generate(args.count, args.seed)
    with GraphMeasurer(target, args.runtime, kernel.threads, config=NETWORK_CONFIG, reference=reference_graph()) as measurer:
        started = time.perf_counter()
        timings, stopped = measurer.measure(graphs)
        measure_s = time.perf_counter() - started
        if stopped:
            raise SystemExit("interrupted")
        again, _ = measurer.measure(graphs[: args.repeat]) if args.repeat > 0 else ([], False)
    # "meas" = what the predictor learns: the fastest of the runs; "normalized" = the same rescaled
    # by the reference graph timed in each group (to the profile's first reference timing);
    # "median" shown beside them
    reference_ms = kernel.metadata.get("reference_ms")
    meas = np.array([t.latency_ms for t in timings])
    norm = np.array([t.normalized_ms(reference_ms) for t in timings])
    median = np.array([t.median_ms for t in timings])
    meas2 = np.array([t.latency_ms for t in again])
    norm2 = np.array([t.normalized_ms(reference_ms) for t in again])
    median2 = np.array([t.median_ms for t in again])
    refs = np.array([t.reference_ms for t in timings if t.reference_ms])

    pk = np.array([e.total_ms for e in kernel.predict_many(graphs)])
    pf = np.array([e.total_ms for e in flops.predict_many(graphs)])
    fit = network_flops_baseline(folder)
    pn = np.array([fit[0] + fit[1] * g.macs for g in graphs]) if fit else None
    # prediction speed: one network at a time (the search's worst case) and in a batch
    big = max(graphs, key=lambda g: len(g.ops))
    reps = 200
    started = time.perf_counter()
    for _ in range(reps):
        kernel.predict_many([big])
    single_ms = (time.perf_counter() - started) * 1e3 / reps
    started = time.perf_counter()
    kernel.predict_many(graphs)
    batch_ms = (time.perf_counter() - started) * 1e3 / len(graphs)

    families = sorted({g.name.rstrip("0123456789") for g in graphs})
    per_family = {}
    for fam in families:
        idx = np.array([g.name.rstrip("0123456789") == fam for g in graphs])
        per_family[fam] = {"networks": int(idx.sum()), "kernel": accuracy(pk[idx], meas[idx]), "flops": accuracy(pf[idx], meas[idx]),
                           **({"flops_network": accuracy(pn[idx], meas[idx])} if pn is not None else {})}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / f"predictor_{args.runtime}_{stamp}.png"
    scatter(png, meas, {"kernel predictor": pk, "FLOPs baseline (per kernel)": pf,
                        **({"FLOPs baseline (per network)": pn} if pn is not None else {})},
            f"{target.name} / {args.runtime}, {kernel.threads} thread(s): {len(graphs)} unseen networks", truth)
    report = {
        "benchmark": "predictor", "target": target.name, "runtime": args.runtime, "time": stamp,
        "machine": kernel.metadata["environment"].get("cpu_model"), "threads": kernel.metadata["threads"],
        "ground_truth": truth, "networks": len(graphs), "families": {f: v["networks"] for f, v in per_family.items()},
        "latency_range_ms": [round(float(meas.min()), 4), round(float(meas.max()), 4)],
        "layers_range": [min(len(g.ops) for g in graphs), max(len(g.ops) for g in graphs)],
        "profile": {"kernels": kernel.metadata["kernels"], "profiling_s": kernel.metadata["profiling_s"],
                    "this_run_s": profile_s, "fusion": kernel.metadata["fusion"], "held_out": kernel.metadata["held_out"],
                    "kernel_costs": "in-network" if kernel.network_model else "isolated",
                    "in_network": {k: v for k, v in (kernel.metadata.get("in_network") or {}).items() if k != "features"}},
        "kernel_predictor": accuracy(pk, meas),
        "flops_baseline": accuracy(pf, meas),
        "flops_network_baseline": ({**accuracy(pn, meas), "fit": {"intercept_ms": fit[0], "ms_per_mac": fit[1]}}
                                   if pn is not None and fit else None),
        "kernel_predictor_vs_normalized": accuracy(pk, norm),
        "kernel_predictor_vs_median": accuracy(pk, median),
        "per_family": per_family,
        "measurement_agreement": {"networks": len(again), "min": accuracy(meas2, meas[: len(again)]),
                                  "normalized": accuracy(norm2, norm[: len(again)]), "median": accuracy(median2, median[: len(again)])}
        if len(again) else None,
        "on_reproducible_networks": reproducible(pk, pf, meas, meas2),
        "prediction_ms_per_network": {"single": round(single_ms, 3), "single_layers": len(big.ops),
                                      "batched": round(batch_ms, 4)},
        "measure_s": round(measure_s, 1),
        "reference_graph_cv": round(float(np.std(refs) / np.mean(refs)), 4) if len(refs) else None,
        "other_load": other_load(load), "scatter_png": png.name,
        "how": "latency = fastest of >=30 runs (harness stops at a +-1% median CI or 1.5 s), 4 networks + a reference "
               "graph timed interleaved; predictions are the predictor's, never measured" if not target.simulated else
               f"latency = {args.runtime}'s simulated latency of the int8 build (deterministic: every run returns the "
               "same estimate); predictions are the predictor's, trained on the simulator's outputs",
        "networks_detail": [{"name": g.name, "layers": len(g.ops), "macs": g.macs, f"{truth}_ms": round(float(r), 5),
                             "median_ms": round(float(n), 5), "kernel_pred_ms": round(float(a), 5),
                             "flops_pred_ms": round(float(f), 5)} for g, r, n, a, f in zip(graphs, meas, median, pk, pf)],
    }
    path = args.out / f"predictor_{args.runtime}_{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    summary = {k: report[k] for k in ("networks", "latency_range_ms", "layers_range", "kernel_predictor", "flops_baseline", "flops_network_baseline",
                                      "kernel_predictor_vs_median", "kernel_predictor_vs_normalized",
                                      "measurement_agreement", "on_reproducible_networks", "prediction_ms_per_network", "measure_s", "reference_graph_cv", "other_load")}
    print(json.dumps(summary, indent=2))
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
