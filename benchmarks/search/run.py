"""Search benchmark: random vs TPE vs NSGA-II at equal trial budgets over several seeds.

    .venv/bin/python benchmarks/search/run.py --trials 12 --seeds 3 --latency-budget-ms 0.08

On digits for host-cpu (latency from the committed ONNX Runtime profile, 1 thread) with a budget
that rules out the larger networks of the space, per strategy and seed: hypervolume of the
feasible front (accuracy x latency, reference point accuracy 0 / latency = budget), best accuracy
within budget, whether the returned winner meets the budget when measured, wall time per trial.
Prints a summary and writes benchmarks/results/search_<time>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine_load import cpu_snapshot, other_load  # noqa: E402

from edgetune.search import SearchConfig, SearchSpace, search  # noqa: E402


def hypervolume(points: list[tuple[float, float]], budget: float) -> float:
    """Area dominated by (accuracy up, latency down) points within [0, budget] x [0, 1]."""
    front = sorted((lat, acc) for acc, lat in points if lat <= budget)
    area, best = 0.0, 0.0
    edges = [lat for lat, _ in front] + [budget]
    for (lat, acc), nxt in zip(front, edges[1:]):
        best = max(best, acc)
        area += best * (nxt - lat)
    return area / budget  # normalised: 1.0 = a perfect network at zero latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--latency-budget-ms", type=float, default=0.08)
    parser.add_argument("--strategies", default="random,tpe,nsga2")
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument("--supernet-samples", type=int, default=12, help="0 skips the supernet ranking check")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    load = cpu_snapshot()
    runs = []
    for strategy in args.strategies.split(","):
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory(prefix="edgetune-search-bench-") as tmp:
                config = SearchConfig(trials=args.trials, strategy=strategy, seed=seed, latency_budget_ms=args.latency_budget_ms,
                                      max_epochs=args.max_epochs)
                started = time.perf_counter()
                result = search("host-cpu", Path(tmp), config, SearchSpace("mobilenet"), compile_winner=False)
                wall = time.perf_counter() - started
            done = [t for t in result.trials if t.state == "complete" and t.feasible and t.accuracy is not None]
            # the latency objective each trial was searched on: predicted (fp32 builds) or measured (int8 builds)
            hv = hypervolume([(t.accuracy, t.latency_ms) for t in done], args.latency_budget_ms)
            run = {"strategy": strategy, "seed": seed, "hypervolume": round(hv, 4),
                   "best_accuracy_within_budget": max((t.accuracy for t in done), default=None),
                   "rejected_before_training": sum(1 for t in result.trials if t.rejected),
                   "winner": result.winner.to_dict() if result.winner else None,
                   "winner_meets_budget_measured": None if result.winner is None else bool(result.winner.measured_ms is not None
                                                        and result.winner.measured_ms <= args.latency_budget_ms),
                   "top_k_measured": [{"trial": t.number, "predicted_fp32_ms": t.predicted_ms,
                                       "search_latency_ms": t.latency_ms, "search_latency_source": t.latency_source,
                                       "verified_measured_ms": t.measured_ms, "deploy": t.candidate.get("deploy")}
                                      for t in result.front if t.measured_ms is not None],
                   "wall_s": round(wall, 1), "wall_s_per_trial": round(wall / args.trials, 2), "predictor": result.predictor}
            runs.append(run)
            print(json.dumps({k: run[k] for k in ("strategy", "seed", "hypervolume", "best_accuracy_within_budget",
                                                  "winner_meets_budget_measured", "wall_s_per_trial")}), flush=True)
    summary = {}
    for strategy in args.strategies.split(","):
        mine = [r for r in runs if r["strategy"] == strategy]
        hvs = [r["hypervolume"] for r in mine]
        best = [r["best_accuracy_within_budget"] for r in mine if r["best_accuracy_within_budget"] is not None]
        summary[strategy] = {
            "hypervolume_mean": round(statistics.mean(hvs), 4), "hypervolume_sd": round(statistics.pstdev(hvs), 4),
            "best_accuracy_mean": round(statistics.mean(best), 4) if best else None,
            "winners_meeting_budget_measured": f"{sum(bool(r['winner_meets_budget_measured']) for r in mine)}/{sum(1 for r in mine if r['winner'])}",
            "wall_s_per_trial_mean": round(statistics.mean(r["wall_s_per_trial"] for r in mine), 2),
        }
    supernet = None
    if args.supernet_samples:
        from edgetune.data import load_dataset
        from edgetune.search._supernet import ranking_agreement

        started = time.perf_counter()
        scores = ranking_agreement(SearchSpace("mobilenet"), load_dataset("digits"), args.supernet_samples,
                                   args.supernet_samples // 2, args.max_epochs, args.max_epochs)
        supernet = {"kendall_tau": scores.kendall_tau, "samples": args.supernet_samples, "standalone": args.supernet_samples // 2,
                    "supernet_accuracy": scores.supernet_accuracy, "standalone_accuracy": scores.standalone_accuracy,
                    "wall_s": round(time.perf_counter() - started, 1)}
        print(json.dumps({"supernet_kendall_tau": scores.kendall_tau}), flush=True)
    report = {"benchmark": "search", "supernet": supernet, "target": "host-cpu", "dataset": "digits", "space": "mobilenet",
              "trials": args.trials, "seeds": args.seeds, "latency_budget_ms": args.latency_budget_ms,
              "max_epochs": args.max_epochs, "summary": summary, "runs": runs, "other_load": other_load(load),
              "time": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"search_{report['time']}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
