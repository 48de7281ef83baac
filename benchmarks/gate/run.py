"""Benchmark of the regression gate itself, per suite run: false alarms (A/A) and detection (injected slowdown).

A suite (default: benchmarks/gate/host-cpu-gate.yaml, a reduced-budget copy of the shipped host-cpu suite
with 5 entries and 9 comparisons; or --suite FILE) is run
twice into a fresh results store, as CI would: a baseline run and a candidate run of the same code, so
every artifact is unchanged. Then, --trials times each, alternating:
  A/A:       `edgetune.bench.gate` re-times every comparison's baseline and candidate artifacts now,
             interleaved in isolated workers (--retime always)  -> any flagged entry is a false alarm
             for that suite run
  injected:  the same, with one comparison's candidate side (a different one each trial, among those
             whose threshold is below the slowdown) slowed by
             --slowdown (busy-wait of that fraction of its baseline median after every inference)
             -> that comparison flagged "regression" is a detection; any other flag is a false alarm
The gate's confidence is 95% for the whole suite (Bonferroni over its comparisons). The run-to-run
verdicts of the two suite runs (no re-timing) are reported once beside them, for reference.

Run:  .venv/bin/python benchmarks/gate/run.py [--suite FILE] [--trials 50] [--sessions 2] [--budget-s 0.4] [--slowdown 0.10]
Writes benchmarks/results/gate_<UTC time>.json. Numbers are only comparable between runs on an idle machine.
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgetune.bench import BenchConfig, ResultsStore, gate, kept_root, load_suite  # noqa: E402
from edgetune.bench._inject import SlowedRunner  # noqa: E402
from edgetune.pipeline import run_suite  # noqa: E402
from edgetune.runners import get_runner  # noqa: E402
from edgetune.targets import detect_host  # noqa: E402


def suite_runs(suite_path: Path, store_path: Path) -> tuple[list[dict], list[dict], dict[str, float]]:
    suite = load_suite(suite_path)
    ids = [run_suite(suite, results_path=str(store_path)).run_id for _ in range(2)]
    with ResultsStore(store_path) as store:
        base, cand = store.rows(run_id=ids[0]), store.rows(run_id=ids[1])
    thresholds = {e.name: e.max_slowdown for e in suite.entries}
    return base, cand, thresholds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, default=ROOT / "benchmarks" / "gate" / "host-cpu-gate.yaml")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=2, help="fresh load pairs per comparison when re-timing")
    parser.add_argument("--budget-s", type=float, default=0.4, help="re-timing budget per artifact and session")
    parser.add_argument("--slowdown", type=float, default=0.10)
    args = parser.parse_args()
    store_path = Path(tempfile.mkdtemp(prefix="edgetune-gate-")) / "results.sqlite"
    start = time.perf_counter()
    base, cand, thresholds = suite_runs(args.suite, store_path)
    kept = kept_root(store_path)
    run_to_run = gate(base, cand, kept, thresholds, retime_mode="never")
    print(f"suite {args.suite.name}: {len(run_to_run)} comparisons; run to run (no re-timing): "
          + ", ".join(f"{c.entry}/{c.candidate} {c.verdict} {c.ratio:.3f}" for c in run_to_run if c.ratio))
    medians = {(r["entry"], r["candidate"]): r["median_ms"] for r in base if r["status"] == "ok" and r.get("median_ms")}
    keys = sorted(medians)
    # the slowdown goes only where the entry's threshold is below it (a 10% slowdown against a 10% threshold is a tie)
    slowable = [k for k in keys if thresholds.get(k[0], 0.05) < args.slowdown] or keys
    config = BenchConfig(budget_s=args.budget_s, early_stop_ratio=0)
    outcomes: dict[str, list[dict]] = {"aa": [], "injected": []}
    for trial in range(args.trials):
        for kind in ("aa", "injected"):  # alternating, so a slow minute of the machine hits both kinds alike
            slowed = slowable[trial % len(slowable)] if kind == "injected" else None

            def runner_for(pair, side, slowed=slowed):  # type: ignore[no-untyped-def]
                plain = get_runner(pair.current.runtime)
                if side == "candidate" and (pair.entry, pair.candidate) == slowed:
                    return SlowedRunner(plain, medians[slowed] * args.slowdown)
                return plain

            verdicts = gate(base, cand, kept, thresholds, retime_mode="always", sessions=args.sessions,
                            config=config, runner_for=runner_for)
            flagged = [(c.entry, c.candidate) for c in verdicts if c.failed]
            outcome = {"slowed": slowed, "flagged": flagged,
                       "false_alarm": any(key != slowed for key in flagged), "detected": slowed in flagged,
                       "ratios": {f"{c.entry}/{c.candidate}": [c.ratio, c.ci_low, c.ci_high] for c in verdicts}}
            outcomes[kind].append(outcome)
            shown = f"{slowed[0]}/{slowed[1]} {'DETECTED' if outcome['detected'] else 'missed'}; " if slowed else ""
            print(f"  trial {trial:2d} {kind:<8} {shown}flagged {flagged or 'nothing'}", flush=True)
    aa_alarms = sum(o["false_alarm"] for o in outcomes["aa"])
    detected = sum(o["detected"] for o in outcomes["injected"])
    injected_alarms = sum(o["false_alarm"] for o in outcomes["injected"])
    summary = {
        "machine": {"cpu": detect_host().model, "cores": detect_host().cores_physical},
        "suite": str(args.suite.relative_to(ROOT) if args.suite.is_relative_to(ROOT) else args.suite),
        "comparisons_per_suite_run": len(keys), "trials": args.trials, "sessions": args.sessions,
        "budget_s": args.budget_s, "slowdown": args.slowdown, "thresholds": thresholds,
        "aa_suite_runs_with_a_false_alarm": aa_alarms, "injected_detected": detected,
        "injected_runs_with_another_flag": injected_alarms,
        "run_to_run": [c.to_dict() for c in run_to_run], "wall_s": time.perf_counter() - start, "outcomes": outcomes,
    }
    print(f"\nA/A suite runs with any flag: {aa_alarms}/{args.trials} (goal <= 1 of 50)")
    print(f"injected {args.slowdown:.0%} slowdown detected: {detected}/{args.trials} (goal >= 49 of 50); "
          f"injected runs with another entry flagged: {injected_alarms}")
    out = ROOT / "benchmarks" / "results" / f"gate_{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(summary, indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
