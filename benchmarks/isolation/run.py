"""Isolation benchmark: does the compile's in-harness median hold when each artifact is timed alone?

For each held-out network (benchmarks/isolation/networks.py: ShuffleNet-, SqueezeNet-, EfficientNet-,
VGG-, ResNeXt-like, two sizes each) this runs `edgetune.compile_model(net, "host-cpu")` at default
options (every ONNX Runtime, OpenVINO, LiteRT and TVM candidate the host builds), then re-times every
timed candidate's artifact ALONE: one fresh Python process per artifact, nothing else loaded, the
compile's thread count, 0.5 s warm-up, the median of 300 samples (a sample is the mean of a group of
runs sized to >= 0.1 ms, as the harness does), in --rounds rounds whose order rotates.

Reported per candidate: harness median / isolated median (goal: within +-5%, or within the isolated
rounds' own spread when that is wider), and per network the winner's regret: its isolated median
over the best isolated median among the candidates that could win (status ok; goal <= 1.03). Also
the compile's wall time per network (goal: median <= 30 s on 2 cores).

Run:  .venv/bin/python benchmarks/isolation/run.py [--nets vgg-s,resnext-s] [--rounds 3] [--budget-s 5]
Writes benchmarks/results/isolation_<UTC time>.json. Do not run anything else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
RESULTS = ROOT / "benchmarks" / "results"
WARMUP_S, SAMPLES, MIN_SAMPLE_MS = 0.5, 300, 0.1


def time_alone(runtime: str, artifact: str, threads: int, inputs: list[dict]) -> dict:
    """In this (fresh) process: load one artifact with edgetune's runner for it and time it, nothing else loaded."""
    from edgetune.bench import random_inputs
    from edgetune.models import TensorSpec
    from edgetune.runners import get_runner

    specs = [TensorSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in inputs]
    session = get_runner(runtime).load(Path(artifact), threads)
    session.set_inputs(random_inputs(specs, seed=0)[0])
    start, runs = time.perf_counter(), 0
    while runs < 10 or time.perf_counter() - start < WARMUP_S:
        session.invoke()
        runs += 1
    group = max(1, math.ceil(MIN_SAMPLE_MS / ((time.perf_counter() - start) * 1e3 / runs)))
    samples = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter_ns()
        for _ in range(group):
            session.invoke()
        samples.append((time.perf_counter_ns() - t0) / 1e6 / group)
    session.close()
    return {"median_ms": statistics.median(samples), "min_ms": min(samples), "group": group,
            "pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0))}


def compile_one(name: str, budget_s: float, threads: int | None) -> dict:
    from benchmarks.isolation.networks import build
    from edgetune import compile_model
    from edgetune.bench import BenchConfig
    from edgetune.errors import EdgetuneError

    module, shape = build(name)
    out = RESULTS / "isolation_runs" / name
    start = time.perf_counter()
    try:
        result = compile_model(module, "host-cpu", out, input_shape=shape, config=BenchConfig(budget_s=budget_s),
                               threads=threads, results_path=RESULTS / "bench.sqlite")
        winner = result.winner.name if result.winner else None
    except EdgetuneError as exc:
        winner = None
        print(f"{name}: {exc}")
    wall = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text())
    return {"net": name, "input_shape": shape, "compile_wall_s": wall, "winner": winner, "threads": manifest["threads"],
            "inputs": manifest["input_model"]["inputs"], "candidates": manifest["candidates"]}


def retime(net: dict, rounds: int) -> None:
    """Each timed candidate alone in a fresh process, ``rounds`` times in rotating order."""
    timed = [c for c in net["candidates"] if c["latency"] and c["artifact"]]
    for c in timed:
        c["alone"] = []
    for r in range(rounds):
        order = timed[r % len(timed):] + timed[:r % len(timed)] if timed else []
        for c in order:
            args = json.dumps([c["runtime"], c["artifact"], net["threads"], net["inputs"]])
            done = subprocess.run([sys.executable, __file__, "--alone", args], capture_output=True, text=True,
                                  cwd=ROOT, timeout=600)
            if done.returncode != 0:
                c["alone_error"] = done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else "failed"
                continue
            c["alone"].append(json.loads(done.stdout.strip().splitlines()[-1]))


def score(net: dict) -> None:
    for c in net["candidates"]:
        alone = [a["median_ms"] for a in c.get("alone", [])]
        if not alone:
            continue
        c["isolated_median_ms"] = statistics.median(alone)
        c["isolated_spread"] = max(alone) / min(alone) - 1
        c["harness_over_isolated"] = c["latency"]["median_ms"] / c["isolated_median_ms"]
        c["within_goal"] = abs(c["harness_over_isolated"] - 1) <= max(0.05, c["isolated_spread"])
    eligible = [c for c in net["candidates"] if c["status"] == "ok" and "isolated_median_ms" in c]
    if eligible and net["winner"]:
        best = min(eligible, key=lambda c: c["isolated_median_ms"])
        chosen = next(c for c in net["candidates"] if c["name"] == net["winner"])
        net["isolated_best"] = best["name"]
        net["winner_regret"] = chosen.get("isolated_median_ms", float("nan")) / best["isolated_median_ms"]


def show(net: dict) -> None:
    print(f"\n== {net['net']} {net['input_shape']} ({net['compile_wall_s']:.0f} s compile, {net['threads']} threads) "
          f"winner {net['winner']}, isolated best {net.get('isolated_best')}, regret {net.get('winner_regret', float('nan')):.3f}")
    print(f"{'candidate':<34} {'status':<8} {'harness ms':>10} {'alone ms':>9} {'ratio':>6} {'rounds spread':>13}  note")
    for c in net["candidates"]:
        if "isolated_median_ms" not in c:
            print(f"{c['name']:<34} {c['status']:<8} {'-':>10} {'-':>9} {'-':>6} {'-':>13}  {(c.get('reason') or c.get('alone_error') or '')[:70]}")
            continue
        print(f"{c['name']:<34} {c['status']:<8} {c['latency']['median_ms']:>10.4f} {c['isolated_median_ms']:>9.4f} "
              f"{c['harness_over_isolated']:>6.3f} {c['isolated_spread']:>12.1%}  {c.get('stopped_early') or ''}")


def summary(nets: list[dict]) -> dict:
    ratios = [c["harness_over_isolated"] for n in nets for c in n["candidates"] if "harness_over_isolated" in c
              and not c.get("stopped_early")]
    within = [c["within_goal"] for n in nets for c in n["candidates"] if "within_goal" in c and not c.get("stopped_early")]
    regrets = [n["winner_regret"] for n in nets if "winner_regret" in n]
    walls = [n["compile_wall_s"] for n in nets]
    return {"candidates_compared": len(ratios), "ratio_min": min(ratios, default=None), "ratio_max": max(ratios, default=None),
            "within_5pct_or_spread": sum(within), "winner_regret_max": max(regrets, default=None),
            "wrong_winners_over_1_03": sum(r > 1.03 for r in regrets), "compile_wall_s_median": statistics.median(walls) if walls else None,
            "compile_wall_s_max": max(walls, default=None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default="", help="comma-separated (default: all ten)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=5.0, help="the compile's timing budget per candidate (CLI default 5)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--alone", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.alone:
        print(json.dumps(time_alone(*json.loads(args.alone))))
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _machine_load import cpu_snapshot, other_load

    from benchmarks.isolation.networks import NETWORKS
    from edgetune.targets import detect_host

    names = [n for n in args.nets.split(",") if n] or list(NETWORKS)
    start = cpu_snapshot()
    nets = []
    for name in names:
        net = compile_one(name, args.budget_s, args.threads)
        retime(net, args.rounds)
        score(net)
        show(net)
        nets.append(net)
    host = detect_host()
    report = {"machine": {"cpu": host.model, "cores": host.cores_physical, "features": host.notable_features},
              "rounds": args.rounds, "budget_s": args.budget_s, "alone": {"warmup_s": WARMUP_S, "samples": SAMPLES},
              "other_processes_cpu_share": other_load(start), "summary": summary(nets), "nets": nets}
    print("\nsummary:", json.dumps(report["summary"], indent=1))
    print(f"other processes used {report['other_processes_cpu_share']} of the CPU meanwhile")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"isolation_{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
