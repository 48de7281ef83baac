"""Benchmark of the regression gate itself: false-alarm rate (A/A) and detection rate (injected slowdown).

Each trial measures a baseline run and a candidate run one after the other, as CI does, each run
being S fresh sessions of the same ONNX Runtime artifact timed by the harness; then
`edgetune.bench.compare` gives its verdict with the default 5% threshold.
  A/A:      the candidate is the same artifact             -> any "regression" is a false alarm
  injected: the candidate busy-waits 10% of the baseline median after every inference (a
            deliberately slower artifact, ~10% slower)      -> "regression" is a detection

Run:  .venv/bin/python benchmarks/gate/run.py [--trials 20] [--sessions 3] [--budget-s 1] [--slowdown 0.10]
Writes benchmarks/results/gate_<UTC time>.json. Run it on an idle machine: other load is exactly
the noise the gate must tolerate, but the numbers are only comparable between idle runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgetune.bench import BenchConfig, compare, measure, random_inputs  # noqa: E402
from edgetune.models import load_model  # noqa: E402
from edgetune.bench._inject import SlowedSession  # noqa: E402
from edgetune.runners import get_runner  # noqa: E402
from edgetune.targets import detect_host  # noqa: E402


def one_run(path: Path, feeds, sessions: int, config: BenchConfig, threads: int, extra_ms: float, run: str) -> list[dict]:
    rows = []
    for index in range(sessions):
        with get_runner("onnxruntime").load(path, threads) as session:
            timed = measure(SlowedSession(session, extra_ms) if extra_ms else session, feeds, config)
        rows.append({"run_id": run, "entry": "gate", "model_name": "gate", "candidate": "onnxruntime-fp32",
                     "status": "ok", "fingerprint": {"threads": threads}, "samples_ms": list(timed.samples_ms),
                     "session_index": index})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=1.0)
    parser.add_argument("--slowdown", type=float, default=0.10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="edgetune.models.zoo:mobilenet_v2_like")
    parser.add_argument("--input-shape", default="1,3,96,96")
    args = parser.parse_args()
    shape = tuple(int(d) for d in args.input_shape.split(","))
    work = Path(tempfile.mkdtemp(prefix="edgetune-gate-"))
    import torch

    torch.manual_seed(0)
    model = load_model(args.model, input_shape=shape, workdir=work)
    feeds = random_inputs(model.inputs)[0]
    config = BenchConfig(budget_s=args.budget_s)
    with get_runner("onnxruntime").load(model.onnx_path, args.threads) as session:  # type: ignore[arg-type]
        reference_ms = measure(session, feeds, config).stats.median_ms
    extra = reference_ms * args.slowdown
    print(f"model {args.model} {shape}, ONNX Runtime {args.threads} threads, median {reference_ms:.4f} ms; "
          f"injected slowdown {extra:.4f} ms ({args.slowdown:.0%}); {args.trials} trials each, {args.sessions} sessions per run")
    outcomes: dict[str, list[dict]] = {"aa": [], "injected": []}
    start = time.perf_counter()
    for trial in range(args.trials):
        for kind in ("aa", "injected"):  # alternate, so slow minutes of the machine hit both kinds alike
            base = one_run(model.onnx_path, feeds, args.sessions, config, args.threads, 0.0, f"{kind}{trial}-a")
            cand = one_run(model.onnx_path, feeds, args.sessions, config, args.threads,
                           extra if kind == "injected" else 0.0, f"{kind}{trial}-b")
            verdict = compare(base, cand, seed=trial)[0]
            outcomes[kind].append({"verdict": verdict.verdict, "ratio": verdict.ratio, "ci": [verdict.ci_low, verdict.ci_high]})
            print(f"  trial {trial:2d} {kind:<8} {verdict.verdict:<11} ratio {verdict.ratio:.3f} "
                  f"[{verdict.ci_low:.3f}, {verdict.ci_high:.3f}]", flush=True)
    false_alarms = sum(o["verdict"] == "regression" for o in outcomes["aa"])
    detected = sum(o["verdict"] == "regression" for o in outcomes["injected"])
    aa_ratios = np.array([o["ratio"] for o in outcomes["aa"]])
    inj_ratios = np.array([o["ratio"] for o in outcomes["injected"]])
    summary = {
        "machine": {"cpu": detect_host().model, "cores": detect_host().cores_physical},
        "model": args.model, "input_shape": shape, "threads": args.threads, "sessions_per_run": args.sessions,
        "budget_s": args.budget_s, "trials": args.trials, "slowdown": args.slowdown, "reference_median_ms": reference_ms,
        "false_alarm_rate": false_alarms / args.trials, "detection_rate": detected / args.trials,
        "aa_ratio_spread": [float(aa_ratios.min()), float(aa_ratios.max())],
        "injected_ratio_spread": [float(inj_ratios.min()), float(inj_ratios.max())],
        "wall_s": time.perf_counter() - start, "outcomes": outcomes,
    }
    print(f"\nfalse alarms (A/A): {false_alarms}/{args.trials} = {summary['false_alarm_rate']:.0%}  (goal <= 5%); "
          f"A/A ratios {aa_ratios.min():.3f}-{aa_ratios.max():.3f}")
    print(f"detected {args.slowdown:.0%} slowdown: {detected}/{args.trials} = {summary['detection_rate']:.0%}  (goal >= 95%); "
          f"ratios {inj_ratios.min():.3f}-{inj_ratios.max():.3f}")
    out = ROOT / "benchmarks" / "results" / f"gate_{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
