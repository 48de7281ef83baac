"""Compile benchmark: every candidate edgetune builds on host-cpu, measured, vs ONNX Runtime fp32.

(a) a small CNN trained on the built-in digits data upsampled to 32x32, compiled with a
    held-out eval split (top-1), calibration and distillation data from the training split,
    pruning levels and (optionally) TVM tuning;
(b) the MobileNetV2-style network at 1x3x224x224 with random weights: latency only, outputs
    checked against fp32 (top-1 agreement on random inputs; calibration is random and labelled so).

Run:  .venv/bin/python benchmarks/compile/run.py [--models digits32,mobilenetv2] [--budget-s 5]
          [--prune 0.25,0.5] [--tune-trials 0]
Prints a table per model and writes benchmarks/results/compile_<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgetune import compile_model  # noqa: E402
from edgetune.bench import BenchConfig  # noqa: E402
from edgetune.data import load_dataset  # noqa: E402
from edgetune.errors import EdgetuneError  # noqa: E402
from edgetune.pipeline import CompileOptions  # noqa: E402
from edgetune.targets import detect_host  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def digits32(seed: int = 0) -> tuple[Path, Path, object]:
    """Digits upsampled 4x to 32x32 (nearest), split 70/30; a 4-conv CNN trained on the 70%."""
    import torch

    from edgetune.models._train import train_classifier

    digits = load_dataset("digits")
    x = np.kron(digits.x, np.ones((1, 1, 4, 4), np.float32))
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.7 * len(x))
    work = RESULTS / "compile_data"
    work.mkdir(parents=True, exist_ok=True)
    train_path, eval_path = work / "digits32_train.npz", work / "digits32_eval.npz"
    np.savez(train_path, x=x[order[:cut]], y=digits.y[order[:cut]])
    np.savez(eval_path, x=x[order[cut:]], y=digits.y[order[cut:]])
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 3, padding=1, stride=2), nn.BatchNorm2d(128), nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )
    from edgetune.data import Dataset

    accuracy = train_classifier(model, Dataset("digits32", x[order[:cut]], digits.y[order[:cut]]), 600, seed, epochs=8)
    print(f"digits32 CNN trained: validation accuracy {accuracy:.1%} (on a split of the training part)")
    return train_path, eval_path, model.eval()


def run(name: str, model, input_shape, options: CompileOptions, budget_s: float, threads: int | None) -> dict:
    out = RESULTS / f"compile_{name}"
    start = time.perf_counter()
    try:
        result = compile_model(model, "host-cpu", out, input_shape=input_shape, options=options,
                               config=BenchConfig(budget_s=budget_s), threads=threads,
                               results_path=RESULTS / "bench.sqlite", progress=lambda m: print(f"  {m}", flush=True))
        evaluation, winner, reason = result.evaluation, result.winner, result.reason
    except EdgetuneError as exc:  # no viable candidate: the manifest is still written
        print(f"{name}: {exc}")
        return {"model": name, "error": str(exc)}
    wall = time.perf_counter() - start
    rows = {r.name: r for r in evaluation.results}
    base = rows.get("onnxruntime-fp32")
    base_ms = base.timing.stats.median_ms if base and base.timing else None
    print(f"\n== {name} on host-cpu, {evaluation.threads} threads ({wall:.0f} s) ==")
    print(f"{'candidate':<40} {'status':<9} {'median ms':>10} {'cv':>7} {'x vs ORT':>9} {'accuracy':>22} {'size KB':>9}")
    table = []
    for r in evaluation.results:
        s = r.timing.stats if r.timing else None
        speedup = base_ms / s.median_ms if s and base_ms else None
        acc = r.accuracy
        acc_text = (f"{acc['metric'][:5]} {acc['value']:.2%} ({-acc['drop_points']:+.2f})" if acc else "-")
        print(f"{r.name:<40} {r.status:<9} {s.median_ms if s else float('nan'):>10.4f} "
              f"{s.cv if s else float('nan'):>7.1%} {speedup or float('nan'):>9.2f} {acc_text:>22} "
              f"{r.artifact.size_bytes / 1024 if r.artifact else float('nan'):>9.1f}  {r.reason[:80]}")
        table.append({**r.to_dict(), "speedup_vs_ort_fp32": speedup})
    win_speedup = base_ms / winner.timing.stats.median_ms if winner and winner.timing and base_ms else None
    print(f"winner: {winner.name if winner else None} ({win_speedup:.2f}x vs ONNX Runtime fp32): {reason}")
    return {"model": name, "wall_s": wall, "ort_fp32_median_ms": base_ms, "winner": winner.name if winner else None,
            "winner_speedup": win_speedup, "reason": reason, "warnings": evaluation.warnings,
            "environment": evaluation.environment, "candidates": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="digits32,mobilenetv2")
    parser.add_argument("--budget-s", type=float, default=5.0)
    parser.add_argument("--prune", default="0.25,0.5", help="pruning ratios for digits32 (comma-separated, '' for none)")
    parser.add_argument("--tune-trials", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"machine": {"cpu": detect_host().model, "cores": detect_host().cores_physical,
                          "features": detect_host().notable_features},
              "budget_s": args.budget_s, "tune_trials": args.tune_trials, "models": []}
    models = args.models.split(",")
    if "digits32" in models:
        train, evaluation, module = digits32()
        prune = tuple(float(p) for p in args.prune.split(",") if p)
        options = CompileOptions(calib=str(train), eval=str(evaluation), train=str(train), max_accuracy_drop=1.0,
                                 prune_ratios=prune, train_epochs=3, tune_trials=args.tune_trials,
                                 calib_methods=("minmax", "entropy", "percentile"))
        report["models"].append(run("digits32", module, (1, 1, 32, 32), options, args.budget_s, args.threads))
    if "mobilenetv2" in models:
        options = CompileOptions(tune_trials=args.tune_trials, max_accuracy_drop=1.0)
        report["models"].append(run("mobilenetv2", "edgetune.models.zoo:mobilenet_v2_like", (1, 3, 224, 224),
                                    options, args.budget_s, args.threads))
    path = RESULTS / f"compile_{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
