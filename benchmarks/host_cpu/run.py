"""Host-CPU benchmark: per-runtime latency and run-to-run stability on this machine.

What it measures, on target ``host-cpu`` (threads = the target's default, physical cores):

1. For each model (the digits CNN trained for 5 s; a MobileNetV2-style network at
   1x3x224x224 with random, seeded weights) it runs ``edgetune.compile_model`` once,
   restricted to fp32 by default (``--precisions``): one candidate per runtime the target
   lists (ONNX Runtime, TVM Relax/LLVM untuned, LiteRT/XNNPACK, and OpenVINO where present),
   fidelity check, interleaved timing. Rows go to ``benchmarks/results/bench.sqlite``.
2. Stability: each candidate that came out ``ok`` has its SAME artifact loaded again in
   ``--repeats`` fresh sessions. Repeat r loads one new session per candidate and times them
   together with ``edgetune.bench.measure_interleaved`` (runtime order rotated per repeat),
   then closes them. Per runtime it reports the median of the R medians, the CV of the R
   medians (std/mean, ddof=1; the issue's target is <= 2% on an idle machine), and the
   within-session CV (median over repeats of each session's sample CV).
3. Ratios TVM/ORT and LiteRT/ORT (fp32 candidates) from the medians of medians (>1 means
   slower than ORT). It also records how much CPU other processes used meanwhile: numbers
   taken while that is well above 0% do not describe an idle machine.

Prints a plain-text table and writes ``benchmarks/results/host_cpu_<UTC timestamp>.json``.

Run (from the repository root):

    .venv/bin/python benchmarks/host_cpu/run.py
    .venv/bin/python benchmarks/host_cpu/run.py --repeats 5 --budget-s 5 --models digits,mobilenetv2

``--budget-s`` is the per-candidate time budget of each timing (compile and every repeat);
timing stops earlier for a candidate whose median's 95% CI is within +-1%.
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

MODELS = ("digits", "mobilenetv2")
TARGET = "host-cpu"
ORT_FP32 = "onnxruntime-fp32"


def _prepare_model(key: str, workdir: Path) -> tuple[Any, Optional[tuple[int, ...]], dict[str, Any]]:
    """Return (model argument for compile_model, input shape or None, facts for the JSON)."""
    import edgetune

    if key == "digits":
        path = workdir / "digits-cnn.pt2"
        info = edgetune.export_zoo_model("digits-cnn", path, train_seconds=5)
        return path, None, {"source": "zoo digits-cnn, trained 5 s", "val_accuracy": info.get("val_accuracy"),
                            "input_shape": info["input_shape"]}
    if key == "mobilenetv2":
        import torch

        from edgetune.models.zoo import mobilenet_v2_like

        torch.manual_seed(0)
        module = mobilenet_v2_like().eval()
        shape = (1, 3, 224, 224)
        return module, shape, {"source": "edgetune.models.zoo:mobilenet_v2_like, random weights (seed 0)",
                               "input_shape": list(shape)}
    raise SystemExit(f"unknown model '{key}'; choose from {', '.join(MODELS)}")


def _cv(values: list[float]) -> Optional[float]:
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else None


def _stability(result: Any, repeats: int, config: Any) -> dict[str, dict[str, Any]]:
    """Load each ok artifact in ``repeats`` fresh sessions (one per runtime per repeat) and time them interleaved."""
    from edgetune.bench import measure_interleaved, random_inputs
    from edgetune.runners import get_runner

    evaluation = result.evaluation
    threads = evaluation.threads
    feeds = random_inputs(evaluation.model.inputs)[0]
    ok = [c for c in evaluation.results if c.status == "ok" and c.artifact is not None]
    per: dict[str, dict[str, Any]] = {c.name: {"runtime": c.plan.runtime, "precision": c.plan.precision,
                                               "artifact": str(c.artifact.path), "artifact_sha256": c.artifact_hash,
                                               "repeats": [], "load_ms": []} for c in ok}
    for r in range(repeats):
        snap = cpu_snapshot()
        order = ok[r % len(ok):] + ok[: r % len(ok)] if ok else []
        sessions = {}
        try:
            for cand in order:
                start = time.perf_counter()
                sessions[cand.name] = get_runner(cand.plan.runtime).load(cand.artifact.path, threads)
                per[cand.name]["load_ms"].append((time.perf_counter() - start) * 1e3)
            timings = measure_interleaved(sessions, {name: feeds for name in sessions}, config)
        finally:
            for session in sessions.values():
                session.close()
        other = other_load(snap)
        for name, timing in timings.items():
            s = timing.stats
            per[name]["repeats"].append({
                "median_ms": s.median_ms, "cv": s.cv, "ci_low_ms": s.ci_low_ms, "ci_high_ms": s.ci_high_ms,
                "n": s.n, "converged": timing.converged, "order": [c.name for c in order],
                "other_processes_cpu_share": other,
            })
        print(f"  repeat {r + 1}/{repeats}: " + ", ".join(
            f"{rt} {t.stats.median_ms:.4g} ms (cv {t.stats.cv:.1%}, n={t.stats.n})" for rt, t in timings.items())
              + f"; other processes used {_fmt(other, '.0%')} of the CPUs")
    for entry in per.values():
        medians = [x["median_ms"] for x in entry["repeats"]]
        entry["median_of_medians_ms"] = statistics.median(medians) if medians else None
        entry["cv_of_medians"] = _cv(medians)
        entry["within_session_cv"] = statistics.median(x["cv"] for x in entry["repeats"]) if medians else None
        entry["min_median_ms"] = min(medians) if medians else None
        entry["max_median_ms"] = max(medians) if medians else None
    return per


def _ratios(medians: dict[str, Optional[float]]) -> dict[str, Optional[float]]:
    """Each fp32 candidate's median over ONNX Runtime fp32's (``tvm_over_ort`` etc.; > 1 is slower than ORT)."""
    base = medians.get(ORT_FP32)
    out = {}
    for name, value in medians.items():
        if name == ORT_FP32 or not name.endswith("-fp32"):
            continue
        label = f"{name[: -len('-fp32')]}_over_ort"
        out[label] = value / base if value and base else None
    out.setdefault("tvm_over_ort", None)
    out.setdefault("litert_over_ort", None)
    return out


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _print_table(models: dict[str, Any], repeats: int) -> None:
    head = (f"{'model':<12} {'candidate':<22} {'status':<8} {'compile med ms':>14} {'cv':>7} "
            f"{'R med-of-med ms':>15} {'CV of R medians':>15} {'within-sess CV':>14} {'x ORT':>6}")
    print()
    print(f"repeats R={repeats}; 'x ORT' = median of medians / onnxruntime-fp32's")
    print(head)
    print("-" * len(head))
    for key, entry in models.items():
        ort = entry["stability"].get(ORT_FP32, {}).get("median_of_medians_ms")
        for cand in entry["candidates"]:
            lat = cand.get("latency") or {}
            stab = entry["stability"].get(cand["name"], {})
            mom = stab.get("median_of_medians_ms")
            ratio = mom / ort if mom and ort else None
            print(f"{key:<12} {cand['name']:<22} {cand['status']:<8} {_fmt(lat.get('median_ms'), '.4f'):>14} "
                  f"{_fmt(lat.get('cv'), '.1%'):>7} {_fmt(mom, '.4f'):>15} {_fmt(stab.get('cv_of_medians'), '.2%'):>15} "
                  f"{_fmt(stab.get('within_session_cv'), '.1%'):>14} {_fmt(ratio, '.2f'):>6}")
            if cand["status"] != "ok" and cand.get("reason"):
                print(f"{'':<12} {'':<22} reason: {cand['reason'][:150]}")
        r, c = entry["ratios_repeats"], entry["ratios_compile"]
        print(f"{key:<12} ratios, median of R medians: "
              + ", ".join(f"{k.replace('_over_ort', '')}/ORT {_fmt(v, '.2f')}" for k, v in r.items())
              + "; compile run: " + ", ".join(f"{k.replace('_over_ort', '')}/ORT {_fmt(v, '.2f')}" for k, v in c.items()))
    print()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh sessions per artifact (default 5)")
    parser.add_argument("--budget-s", type=float, default=5.0, help="per-candidate timing budget, seconds (default 5)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "bench.sqlite", help="results SQLite")
    parser.add_argument("--precisions", default="fp32",
                        help="comma-separated precisions to compile (default fp32: one candidate per runtime); "
                             "'target' = all the host-cpu target lists")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep models/artifacts here (default: temp dir)")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown or not keys:
        parser.error(f"--models: unknown {unknown}; choose from {','.join(MODELS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    import edgetune
    from edgetune.bench import BenchConfig
    from edgetune.targets import detect_host, load_target

    config = BenchConfig(budget_s=args.budget_s)
    target = load_target(TARGET)
    if args.precisions != "target":
        wanted = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
        missing = [p for p in wanted if p not in target.precisions]
        if missing or not wanted:
            parser.error(f"--precisions: {missing or 'none given'}; host-cpu lists {','.join(target.precisions)}")
        target = target.model_copy(update={"precisions": wanted})
    host = detect_host()
    started = datetime.now(timezone.utc)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "host_cpu",
        "started_utc": started.isoformat(timespec="seconds"),
        "target": TARGET,
        "runtimes": list(target.runtimes),
        "precisions": list(target.precisions),
        "machine": {"cpu_model": host.model, "arch": host.arch, "cores_physical": host.cores_physical,
                    "cores_logical": host.cores_logical, "ram_mb": host.ram_mb,
                    "notable_features": list(host.notable_features)},
        "repeats": args.repeats,
        "budgets": {"compile_budget_s_per_candidate": args.budget_s, "repeat_budget_s_per_candidate": args.budget_s,
                    "ci_rel": config.ci_rel, "min_repeats": config.min_repeats, "warmup_runs": config.warmup_runs,
                    "warmup_s": config.warmup_s, "block": config.block},
        "results_sqlite": str(args.results),
        "loadavg_start": list(os.getloadavg()),
        "models": {},
    }
    t0 = time.perf_counter()
    run_snap = cpu_snapshot()
    tmp = None if args.work_dir else tempfile.TemporaryDirectory(prefix="edgetune-hostcpu-")
    work = args.work_dir or Path(tmp.name)
    try:
        for key in keys:
            print(f"== {key}")
            mdir = work / key
            mdir.mkdir(parents=True, exist_ok=True)
            model, shape, facts = _prepare_model(key, mdir)
            tc = time.perf_counter()
            snap = cpu_snapshot()
            result = edgetune.compile_model(model, target, mdir / "compiled", input_shape=shape, config=config,
                                            results_path=args.results, progress=print)
            compile_s = time.perf_counter() - tc
            compile_other = other_load(snap)
            ev = result.evaluation
            print(f"  winner: {result.winner.name if result.winner else None} ({result.reason}); "
                  f"compile step {compile_s:.1f} s "
                  f"(other processes used {_fmt(compile_other, '.0%')} of the CPUs); stability: {args.repeats} repeats")
            stability = _stability(result, args.repeats, config)
            candidates = [c.to_dict() for c in ev.results]
            compile_medians = {c.name: c.timing.stats.median_ms for c in ev.results if c.status == "ok" and c.timing}
            report["threads"] = ev.threads
            report["environment"] = ev.environment
            report["library_versions"] = ev.environment.get("libraries", {})
            report["models"][key] = {
                **facts,
                "model_name": ev.model.name,
                "model_sha256": ev.model.sha256,
                "run_id": ev.run_id,
                "winner": result.winner.name if result.winner else None,
                "winner_reason": result.reason,
                "compile_wall_s": compile_s,
                "compile_other_processes_cpu_share": compile_other,
                "candidates": candidates,
                "stability": stability,
                "ratios_repeats": _ratios({n: e["median_of_medians_ms"] for n, e in stability.items()}),
                "ratios_compile": _ratios(compile_medians),
            }
    finally:
        if tmp is not None:
            tmp.cleanup()
    report["wall_s"] = time.perf_counter() - t0
    report["loadavg_end"] = list(os.getloadavg())
    report["other_processes_cpu_share"] = other_load(run_snap)
    _print_table(report["models"], args.repeats)
    print(f"machine: {host.model} ({host.arch}), {host.cores_physical} physical / {host.cores_logical} logical cores, "
          f"threads {report.get('threads')}; libraries {report.get('library_versions')}")
    print(f"load average (1/5/15 min) at start {report['loadavg_start']}, at end {report['loadavg_end']}; "
          f"other processes used {_fmt(report['other_processes_cpu_share'], '.0%')} of the CPUs during the run "
          f"(not an idle machine if this is well above 0%)")
    out = RESULTS_DIR / f"host_cpu_{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out} (total {report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
