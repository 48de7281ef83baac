"""Simulated targets: the MobileNetV2-style network on every Ethos-U, systolic-NPU and FPGA target.

For each model and each simulated target, runs ``compile_model`` (int8 candidates, random
calibration: latency does not depend on the data) and records the simulator's figures
(latency, cycles, memory, utilisation, energy), the wall time the simulation itself took and
the whole compile's wall time, or the infeasible reason. A cross-check runs SCALE-Sim's own
example layer (AlexNet Conv1 on its 32x32 ws example array; its repository's golden
COMPUTE_REPORT says 112,283 cycles).

Run:  .venv/bin/python benchmarks/simulated/run.py [--models mobilenetv2-like-96,mobilenetv2-like]
          [--targets T1,T2] [--fresh]   (--fresh: a new, empty simulation cache)
Prints a table and writes benchmarks/results/simulated_<UTC time>.json.
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

from edgetune import compile_model  # noqa: E402
from edgetune.bench import BenchConfig  # noqa: E402
from edgetune.errors import EdgetuneError  # noqa: E402
from edgetune.models.zoo import zoo_model  # noqa: E402
from edgetune.pipeline import CompileOptions  # noqa: E402
from edgetune.runners import runnability  # noqa: E402
from edgetune.targets import list_targets  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SCALESIM_GOLDEN_CYCLES = 112283  # scale-sim-v3 test/general/golden_trace_calc/COMPUTE_REPORT.csv
KEEP = ("latency_ms", "cycles_total", "cycles_npu", "cycles", "cycles_incl_prefetch", "utilization_pct",
        "sram_used_kb", "off_chip_flash_used_kb", "dram_used_kb", "npu_ops", "cpu_ops", "array",
        "dram_read_bytes", "dram_write_bytes", "dram_peak_layer_gbps", "energy_uj", "simulation_wall_s", "cache",
        "arena_kb", "flash_kb", "fits")


def cross_check() -> dict:
    from edgetune.simulate._scalesim import EXAMPLE_ARRAY, run_scalesim
    from edgetune.simulate._topology import ArrayLayer

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        row = run_scalesim([ArrayLayer(224, 224, 11, 11, 3, 96, 4)], EXAMPLE_ARRAY, Path(tmp))[0]
    return {"layer": "AlexNet Conv1 224x224x3, 11x11x96, stride 4 on 32x32 ws (SCALE-Sim configs/scale.cfg)",
            "published_cycles": SCALESIM_GOLDEN_CYCLES, "edgetune_cycles": row["cycles"],
            "difference_pct": 100 * (row["cycles"] - SCALESIM_GOLDEN_CYCLES) / SCALESIM_GOLDEN_CYCLES,
            "wall_s": round(time.perf_counter() - start, 2)}


def run_one(model_name: str, target: str, work: Path) -> dict:
    module, shape = zoo_model(model_name)
    options = CompileOptions(max_accuracy_drop=100.0, calib_samples=16, budget_s=0.5)
    start = time.perf_counter()
    try:
        result = compile_model(module, target, output_dir=work / f"{model_name}-{target}", input_shape=shape,
                               options=options, config=BenchConfig(budget_s=0.5), results_path=work / "r.sqlite")
    except EdgetuneError as exc:
        return {"status": "error", "reason": str(exc), "compile_wall_s": round(time.perf_counter() - start, 1)}
    row: dict = {"compile_wall_s": round(time.perf_counter() - start, 1)}
    candidate = result.evaluation.results[0]
    row["status"], row["reason"] = candidate.status, candidate.reason
    details = candidate.artifact.details if candidate.artifact else {}
    row.update({k: details[k] for k in KEEP if k in details})
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="mobilenetv2-like-96,mobilenetv2-like")
    parser.add_argument("--targets", default="")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    if args.fresh:
        os.environ["EDGETUNE_CACHE"] = tempfile.mkdtemp(prefix="edgetune-simcache-")
    targets = [t.name for t in list_targets() if t.simulated and runnability(t).runnable]
    if args.targets:
        targets = [t for t in targets if t in args.targets.split(",")]
    report = {"when": datetime.now(timezone.utc).isoformat(), "cross_check": cross_check(), "runs": []}
    print(json.dumps(report["cross_check"]))
    with tempfile.TemporaryDirectory() as tmp:
        for model_name in args.models.split(","):
            for target in targets:
                row = {"model": model_name, "target": target, **run_one(model_name, target, Path(tmp))}
                report["runs"].append(row)
                print(json.dumps(row), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"simulated_{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
