"""TVM tuning where it pays: untuned vs MetaSchedule-tuned at several trial budgets, and tuned TVM vs the best
other runtime, on held-out networks on host-cpu (or any target, tuned over the RPC farm).

What it does, per network (``benchmarks/predictor/networks.generate(seed=--seed)``: MobileNet-,
ResNet- and plain-CNN-shaped networks with random weights, never the profiler's own):

1. Builds the untuned TVM artifact (lowering ``tvm``), one tuned artifact per budget in
   ``--trials`` (lowering ``tvm-tuned``; each budget tunes from an empty records folder, so its
   tuning wall time is the whole cost of that budget), and the other runtimes' fp32 artifacts
   (``--others``, default ONNX Runtime and OpenVINO).
2. Checks every TVM artifact against ONNX Runtime's outputs.
3. Times all of a network's artifacts in ``--repeats`` rounds: each round loads fresh sessions and
   times them interleaved with ``edgetune.bench.measure_interleaved`` (order rotated per round;
   where the harness runs each session in its own worker, these are isolated workers).
4. Reports per network the median of round medians and their spread (the noise floor), the
   speed-up untuned/tuned per budget with the tuning wall time beside it, and tuned TVM (best
   budget) vs the fastest other runtime. Writes ``benchmarks/results/tvm_budgets_<UTC>.json``.

Run from the repository root on a quiet machine, one run at a time (hours: ~4 s per trial on 2 cores):

    .venv/bin/python benchmarks/tvm_tune/budgets.py --networks 10 --trials 64,256
    .venv/bin/python benchmarks/tvm_tune/budgets.py --networks 1 --trials 4 --repeats 1 --budget-s 0.2   # smoke run

``--target rpi4 --rpc-tracker HOST:PORT`` tunes and times on boards behind the tracker instead
(``--others onnxruntime`` there: OpenVINO does not run on the boards).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks._machine_load import cpu_snapshot, other_load  # noqa: E402

OTHER_LOWERING = {"onnxruntime": None, "openvino": "openvino"}  # fp32 artifact of each other runtime


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def _build(model: Any, target: Any, folder: Path, trials: list[int], others: list[str],
           rpc_tracker: Optional[str]) -> dict[str, dict[str, Any]]:
    """label -> {runtime, artifact, tuning (details, for tuned ones)}; every tuned budget from empty records."""
    from edgetune.lowering import LoweringContext, get_lowering

    remote = {"rpc_tracker": rpc_tracker} if rpc_tracker else {}
    built: dict[str, dict[str, Any]] = {}
    steps = [("tvm-untuned", "tvm", "tvm", {})]
    steps += [(f"tvm-tuned-{n}", "tvm", "tvm-tuned", {"tune_trials": n, "tuning_records": str(folder / f"records-{n}")})
              for n in trials]
    for label, runtime, lowering, options in steps:
        work = folder / label
        work.mkdir(parents=True, exist_ok=True)
        _say(f"building {label}")
        artifact = get_lowering(lowering).apply(model, target, work,
                                                LoweringContext(options={**options, **remote}, progress=_say))
        built[label] = {"runtime": runtime, "artifact": artifact, "tuning": artifact.details if options else None}
    for runtime in others:
        lowering = OTHER_LOWERING[runtime]
        if lowering is None:
            built[f"{runtime}-fp32"] = {"runtime": runtime, "artifact": None, "path": model.onnx_path, "tuning": None}
            continue
        work = folder / runtime
        work.mkdir(parents=True, exist_ok=True)
        built[f"{runtime}-fp32"] = {"runtime": runtime, "artifact": get_lowering(lowering).apply(
            model, target, work, LoweringContext()), "tuning": None}
    return built


def _path(entry: dict[str, Any]) -> Path:
    return entry["path"] if entry["artifact"] is None else entry["artifact"].path


def _max_abs_diff(built: dict[str, dict[str, Any]], runners: dict[str, Any], feeds: dict[str, Any],
                  threads: int, reference: Any) -> dict[str, float]:
    import numpy as np

    diffs = {}
    for label, entry in built.items():
        with runners[entry["runtime"]].load(_path(entry), threads) as session:
            diffs[label] = float(np.max(np.abs(session.run(feeds)[0] - reference)))
    return diffs


def _time_rounds(built: dict[str, dict[str, Any]], runners: dict[str, Any], feeds: dict[str, Any], threads: int,
                 repeats: int, config: Any) -> dict[str, list[float]]:
    """Round medians per artifact: fresh sessions per round, timed interleaved, order rotated."""
    from edgetune.bench import measure_interleaved

    labels = list(built)
    medians: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(repeats):
        order = labels[r % len(labels):] + labels[: r % len(labels)]
        sessions = {label: runners[built[label]["runtime"]].load(_path(built[label]), threads) for label in order}
        try:
            timings = measure_interleaved(sessions, {label: feeds for label in order}, config)
        finally:
            for session in sessions.values():
                session.close()
        for label, timing in timings.items():
            medians[label].append(timing.stats.median_ms)
        _say(f"round {r + 1}/{repeats}: " + ", ".join(f"{k} {t.stats.median_ms:.4g} ms" for k, t in timings.items()))
    return medians


def _summary(medians: list[float]) -> dict[str, float]:
    mid = statistics.median(medians)
    return {"median_ms": mid, "spread": (max(medians) - min(medians)) / mid if mid else 0.0}


def _network_report(name: str, built: dict[str, dict[str, Any]], medians: dict[str, list[float]],
                    diffs: dict[str, float], trials: list[int]) -> dict[str, Any]:
    summary = {label: _summary(values) for label, values in medians.items()}
    untuned = summary["tvm-untuned"]["median_ms"]
    tuned = {n: summary[f"tvm-tuned-{n}"]["median_ms"] for n in trials}
    others = {label: s["median_ms"] for label, s in summary.items() if not label.startswith("tvm-")}
    best_budget = min(tuned, key=lambda n: tuned[n]) if tuned else None
    best_other = min(others, key=lambda k: others[k]) if others else None
    return {
        "network": name, "summary": summary, "round_medians": medians, "max_abs_diff_vs_onnxruntime": diffs,
        "tuning": {n: {k: built[f"tvm-tuned-{n}"]["tuning"][k] for k in
                       ("trials_measured", "tasks_total", "tasks_tuned", "tasks_without_record", "tuning_s",
                        "measured_on")} for n in trials},
        "speedup_untuned_over_tuned": {n: untuned / t for n, t in tuned.items()},
        "best_budget": best_budget, "best_other": best_other,
        "tuned_over_best_other": (tuned[best_budget] / others[best_other]) if best_budget and best_other else None,
    }


def _print(report: dict[str, Any]) -> None:
    print(f"\n{'network':<22} {'untuned ms':>10} " + " ".join(f"{'tuned@' + str(n) + ' ms':>13} {'x':>6} {'tune s':>7}"
                                                           for n in report["trials"])
          + f" {'best other':>22} {'tuned/other':>11}")
    for net in report["networks"]:
        s = net["summary"]
        cells = [f"{s['tvm-untuned']['median_ms']:>10.4f}"]
        for n in report["trials"]:
            cells.append(f"{s[f'tvm-tuned-{n}']['median_ms']:>13.4f} {net['speedup_untuned_over_tuned'][n]:>5.2f}x "
                         f"{net['tuning'][n]['tuning_s']:>7.0f}")
        other = net["best_other"]
        cells.append(f"{(other or '-') + ' ' + (format(s[other]['median_ms'], '.4f') if other else ''):>22}")
        ratio = net["tuned_over_best_other"]
        cells.append(f"{format(ratio, '.2f') + 'x' if ratio else '-':>11}")
        print(f"{net['network']:<22} " + " ".join(cells))
    print("x: untuned/tuned; tuned/other above 1 means the best other runtime is faster. Read every ratio against "
          "the spread of the round medians in the JSON.")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=10, help="held-out networks (default 10)")
    parser.add_argument("--seed", type=int, default=17017, help="network generator seed (default 17017: held out)")
    parser.add_argument("--trials", default="64,256", help="comma-separated trial budgets (default 64,256)")
    parser.add_argument("--others", default="onnxruntime,openvino", help="other runtimes (default onnxruntime,openvino)")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds, fresh sessions each (default 3)")
    parser.add_argument("--budget-s", type=float, default=3.0, help="timing budget per artifact and round (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: the target's)")
    parser.add_argument("--target", default="host-cpu", help="target name, YAML file or LLVM string (default host-cpu)")
    parser.add_argument("--rpc-tracker", default=None, help="HOST:PORT of the tracker for an RPC target")
    args = parser.parse_args()
    args.trials = [int(t) for t in args.trials.split(",") if t]
    args.others = [o for o in args.others.split(",") if o]
    if args.networks < 1 or args.repeats < 1 or any(t < 1 for t in args.trials) or not args.trials:
        parser.error("need --networks >= 1, --repeats >= 1 and positive --trials")
    if set(args.others) - set(OTHER_LOWERING):
        parser.error(f"--others takes {', '.join(OTHER_LOWERING)}")
    return args


def main() -> int:
    args = _parse()
    from benchmarks.predictor.networks import generate
    from edgetune.bench import BenchConfig, isolated, random_inputs
    from edgetune.models import load_model
    from edgetune.predict import to_onnx
    from edgetune.runners import get_runner, require_runnable, runner_for
    from edgetune.targets import detect_host, load_target

    target = load_target(args.target)
    require_runnable(target, args.rpc_tracker)
    threads = args.threads or target.thread_count
    runners = {r: isolated(runner_for(r, target, args.rpc_tracker)) for r in ("tvm", *args.others)}  # each artifact alone
    started, t0, snap = datetime.now(timezone.utc), time.perf_counter(), cpu_snapshot()
    networks = []
    for graph in generate(args.networks, seed=args.seed)[: args.networks]:
        print(f"== {graph.name}", flush=True)
        with tempfile.TemporaryDirectory(prefix="edgetune-tvmbudgets-") as tmp:
            folder = Path(tmp)
            model = load_model(to_onnx(graph, folder / f"{graph.name}.onnx"), workdir=folder / "model")
            built = _build(model, target, folder, args.trials, args.others, args.rpc_tracker)
            feeds = random_inputs(model.inputs)[0]
            with isolated(get_runner("onnxruntime")).load(model.onnx_path, threads) as session:  # type: ignore[arg-type]
                reference = session.run(feeds)[0]
            diffs = _max_abs_diff(built, runners, feeds, threads, reference)
            medians = _time_rounds(built, runners, feeds, threads, args.repeats, BenchConfig(budget_s=args.budget_s))
        networks.append(_network_report(graph.name, built, medians, diffs, args.trials))
    host = detect_host()
    report = {
        "benchmark": "tvm_budgets", "started_utc": started.isoformat(timespec="seconds"), "target": target.name,
        "machine": {"cpu_model": host.model, "cores_physical": host.cores_physical}, "threads": threads,
        "trials": args.trials, "others": args.others, "seed": args.seed, "repeats": args.repeats,
        "budget_s": args.budget_s, "networks": networks, "other_processes_cpu_share": other_load(snap),
        "wall_s": time.perf_counter() - t0,
    }
    _print(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"tvm_budgets_{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out} (total {report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
