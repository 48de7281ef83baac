"""TVM MetaSchedule tuning benchmark: untuned vs tuned latency of a MobileNetV2-style network on host-cpu.

What it does:

1. Loads ``edgetune.models.zoo:mobilenet_v2_like`` (random weights, torch seed 0) at 1x3xSxS
   (``--size``, default 224; ``--width-mult`` builds a narrower network instead).
2. Compiles it twice for ``host-cpu``: lowering ``tvm`` (untuned) and lowering ``tvm-tuned`` with
   ``--trials`` MetaSchedule trials. Records go to ``--profiles`` (default: a fresh temporary
   folder, so the whole budget is tuned now; pass a folder to keep the records and reuse them).
3. Checks both artifacts give the same outputs, then times them in ``--repeats`` rounds: each
   round loads a fresh session of each and times them interleaved with
   ``edgetune.bench.measure_interleaved`` (order rotated per round).
4. Reports per artifact the median of the round medians and the spread of those medians (the
   noise floor to read the speed-up against), the speed-up untuned/tuned, tuning time and how
   many tasks were tuned or reused. Prints a table and writes
   ``benchmarks/results/tvm_tune_<UTC timestamp>.json``.

Run (from the repository root):

    .venv/bin/python benchmarks/tvm_tune/run.py --trials 64
    .venv/bin/python benchmarks/tvm_tune/run.py --trials 16 --size 64 --repeats 2 --budget-s 1   # smoke run

Tuning is slow on a small machine: on 2 cores expect minutes for 64 trials at 224x224.
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

from benchmarks._machine_load import cpu_snapshot, other_load  # noqa: E402

TARGET = "host-cpu"
FACTORY = "edgetune.models.zoo:mobilenet_v2_like"


def _load_model(size: int, width_mult: float, workdir: Path) -> Any:
    import torch

    from edgetune.models import load_model
    from edgetune.models.zoo import mobilenet_v2_like

    torch.manual_seed(0)
    shape = (1, 3, size, size)
    if width_mult == 1.0:
        return load_model(FACTORY, input_shape=shape, workdir=workdir)
    return load_model(mobilenet_v2_like(width_mult=width_mult), input_shape=shape, workdir=workdir)


def _compile(model: Any, target: Any, workdir: Path, profiles: Path, trials: int) -> dict[str, Any]:
    """Build the untuned and the tuned artifact; return {'untuned': Artifact, 'tuned': Artifact}."""
    from edgetune.lowering import LoweringContext, get_lowering

    def progress(message: str) -> None:
        print(f"  {message}", flush=True)

    built = {}
    for label, lowering, context in (
        ("untuned", "tvm", LoweringContext()),
        ("tuned", "tvm-tuned", LoweringContext(options={"tune_trials": trials}, profiles_dir=profiles, progress=progress)),
    ):
        folder = workdir / label
        folder.mkdir(parents=True, exist_ok=True)
        print(f"== building {label} ({lowering})", flush=True)
        built[label] = get_lowering(lowering).apply(model, target, folder, context)
        print(f"  built in {built[label].build_s:.1f} s", flush=True)
    return built


def _max_abs_diff(artifacts: dict[str, Any], feeds: dict[str, Any], threads: int) -> float:
    import numpy as np

    from edgetune.runners import get_runner

    outputs = []
    for artifact in artifacts.values():
        with get_runner("tvm").load(artifact.path, threads) as session:
            outputs.append(session.run(feeds)[0])
    return float(np.max(np.abs(outputs[0] - outputs[1])))


def _time_rounds(artifacts: dict[str, Any], feeds: dict[str, Any], threads: int, repeats: int,
                 config: Any) -> dict[str, list[dict[str, Any]]]:
    """Fresh sessions per round, timed interleaved; round r starts with a different artifact."""
    from edgetune.bench import measure_interleaved
    from edgetune.runners import get_runner

    labels = list(artifacts)
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for r in range(repeats):
        order = labels[r % len(labels):] + labels[: r % len(labels)]
        snap = cpu_snapshot()
        sessions = {label: get_runner("tvm").load(artifacts[label].path, threads) for label in order}
        try:
            timings = measure_interleaved(sessions, {label: feeds for label in order}, config)
        finally:
            for session in sessions.values():
                session.close()
        other = other_load(snap)
        for label, timing in timings.items():
            s = timing.stats
            rounds[label].append({"median_ms": s.median_ms, "ci_low_ms": s.ci_low_ms, "ci_high_ms": s.ci_high_ms,
                                  "cv": s.cv, "n": s.n, "converged": timing.converged, "order": order,
                                  "other_processes_cpu_share": other})
        print(f"  round {r + 1}/{repeats}: " + ", ".join(f"{k} {t.stats.median_ms:.4g} ms" for k, t in timings.items())
              + (f"; other processes used {other:.0%} of the CPUs" if other is not None else ""), flush=True)
    return rounds


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    medians = [r["median_ms"] for r in rounds]
    mid = statistics.median(medians)
    return {"median_of_medians_ms": mid, "min_median_ms": min(medians), "max_median_ms": max(medians),
            "spread_of_medians": (max(medians) - min(medians)) / mid if mid else None}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64, help="MetaSchedule trial budget (default 64)")
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--width-mult", type=float, default=1.0, help="MobileNetV2 width multiplier (default 1.0)")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds, fresh sessions each (default 3)")
    parser.add_argument("--budget-s", type=float, default=5.0, help="timing budget per artifact and round, s (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: the target's)")
    parser.add_argument("--profiles", type=Path, default=None,
                        help="records folder to keep/reuse (default: a fresh temporary folder)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep models and artifacts here (default: temp)")
    args = parser.parse_args(argv)
    if args.trials < 0 or args.size < 32 or args.repeats < 1 or args.width_mult <= 0:
        parser.error("need --trials >= 0, --size >= 32, --repeats >= 1 and --width-mult > 0")

    from edgetune.bench import BenchConfig, random_inputs
    from edgetune.targets import detect_host, load_target

    target = load_target(TARGET)
    threads = args.threads or target.thread_count
    config = BenchConfig(budget_s=args.budget_s)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    run_snap = cpu_snapshot()
    loadavg_start = list(os.getloadavg())
    tmp = tempfile.TemporaryDirectory(prefix="edgetune-tvmtune-")
    work = args.work_dir or Path(tmp.name)
    profiles = args.profiles or Path(tmp.name) / "profiles"
    try:
        model = _load_model(args.size, args.width_mult, work / "model")
        built = _compile(model, target, work, profiles, args.trials)
        feeds = random_inputs(model.inputs)[0]
        diff = _max_abs_diff(built, feeds, threads)
        print(f"== timing ({args.repeats} rounds, {threads} threads); max |untuned - tuned| output = {diff:.3g}", flush=True)
        rounds = _time_rounds(built, feeds, threads, args.repeats, config)
    finally:
        tmp.cleanup()
    summary = {label: _summary(r) for label, r in rounds.items()}
    untuned, tuned = summary["untuned"]["median_of_medians_ms"], summary["tuned"]["median_of_medians_ms"]
    details = built["tuned"].details
    host = detect_host()
    report = {
        "benchmark": "tvm_tune",
        "started_utc": started.isoformat(timespec="seconds"),
        "target": TARGET,
        "model": {"source": FACTORY, "width_mult": args.width_mult, "input_shape": [1, 3, args.size, args.size],
                  "weights": "random, torch seed 0", "sha256": model.sha256},
        "machine": {"cpu_model": host.model, "arch": host.arch, "cores_physical": host.cores_physical,
                    "cores_logical": host.cores_logical},
        "threads": threads,
        "trials": args.trials,
        "tuning": details,
        "build_s": {label: artifact.build_s for label, artifact in built.items()},
        "max_abs_output_diff": diff,
        "timing": {"repeats": args.repeats, "budget_s": args.budget_s, "ci_rel": config.ci_rel},
        "rounds": rounds,
        "summary": summary,
        "speedup_untuned_over_tuned": untuned / tuned if tuned else None,
        "loadavg_start": loadavg_start,
        "loadavg_end": list(os.getloadavg()),
        "other_processes_cpu_share": other_load(run_snap),
        "wall_s": time.perf_counter() - t0,
    }
    _print_report(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"tvm_tune_{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out} (total {report['wall_s']:.0f} s)")
    return 0


def _print_report(report: dict[str, Any]) -> None:
    tuning = report["tuning"]
    print()
    print(f"{'artifact':<9} {'median of medians ms':>21} {'min..max ms':>19} {'spread':>7} {'build s':>8}")
    for label, s in report["summary"].items():
        print(f"{label:<9} {s['median_of_medians_ms']:>21.4f} "
              f"{s['min_median_ms']:>9.4f}..{s['max_median_ms']:<9.4f} {s['spread_of_medians']:>7.1%} "
              f"{report['build_s'][label]:>8.1f}")
    print(f"speed-up untuned/tuned: {report['speedup_untuned_over_tuned']:.2f}x  (read it against the spreads above)")
    print(f"tuning: {tuning['tune_trials']} trials requested, {tuning['trials_measured']} measured, "
          f"{tuning['tasks_total']} tasks ({tuning['tasks_tuned']} tuned now, {tuning['tasks_reused']} reused, "
          f"{tuning['tasks_without_record']} without record), {tuning['tuning_s']:.0f} s")
    other = report["other_processes_cpu_share"]
    print(f"load average at start {report['loadavg_start']}, at end {report['loadavg_end']}; other processes used "
          f"{'-' if other is None else format(other, '.0%')} of the CPUs (not an idle machine if well above 0%)")


if __name__ == "__main__":
    sys.exit(main())
