"""Predictor accuracy benchmark, scored against the measurement's own repeatability.

    .venv/bin/python benchmarks/predictor/run.py --modes shipped,adapted            # ~10 min on 2 cores
    .venv/bin/python benchmarks/predictor/run.py --modes fresh --fresh-budget 30     # + a 30-min profile

Networks: the seen families of ``networks.py`` (MobileNet-, ResNet-like, plain CNNs, the search
space) and the held-out families of ``heldout.py`` (ShuffleNet-, SqueezeNet-, EfficientNet-, VGG-,
ResNeXt-like: channel shuffle, fire modules, squeeze-excite, grouped convolutions, VGG stacks), a
separate generator profiling never sees.

Ground truth: every network timed in its own worker process (fastest of >= 30 runs, one thread as the
profile), in two passes in opposite order; the lower of the two is the latency, and whether the two
agree within 5% says whether the network reproduces on this machine right now.

Modes (each predicts the same measured networks):
- ``shipped``: the profile in profiles/<target>/<runtime>/ as it is, uncorrected (on another CPU
  than it was taken on, this is what a new user gets without adapting);
- ``adapted``: the same profile corrected for this machine (``edgetune profile --adapt``, run on a copy
  in benchmarks/results/profiles-adapted/: times the reference networks here first, unless
  ``--reuse-adapted`` finds this machine's adaptation there);
- ``fresh``: a profile taken here now (``--fresh-budget`` minutes) into ``--fresh-profiles-dir``
  (default benchmarks/results/profiles-fresh/, so the committed profile stays as it is).

Reported per mode: share within +-10% (and 5%) over all networks and over the networks whose passes
agree within 5%, the repeatability ceiling (how often the two passes agree within 5% and 10%),
Spearman rank correlation, per family, seen vs held-out families, the networks that reproduce
split at 0.1 ms measured (``reproducible_by_size``), the estimated share of totals
(kinds the profile has no regressor for), and two FLOPs baselines (per kernel a + b x MACs on the
profile's kernels; per network a + b x MACs on its networks). Beside them, the repeatability across
hours (``across_truths``, from ``across.py``): how the machine's other stored truths score as predictions
of this one, the ceiling for a profile measured at another hour. Writes
benchmarks/results/predictor_<runtime>_<time>.json (``machine``: where the truth was measured; each mode's
``profile_machine``: where its profile was) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine_load import cpu_snapshot, other_load  # noqa: E402
from across import across_truths, same_machine, stored_truths  # noqa: E402
from heldout import HELD_OUT_FAMILIES, generate_heldout  # noqa: E402
from networks import generate  # noqa: E402

from edgetune.predict import FlopsPredictor, GraphMeasurer, KernelPredictor, profile, profile_folder  # noqa: E402
from edgetune.predict._calibrate import Calibration, calibrate, stored_references  # noqa: E402
from edgetune.predict._machine import current_machine, taken_here  # noqa: E402
from edgetune.predict._measure import NETWORK_CONFIG  # noqa: E402
from edgetune.predict._references import measure_references  # noqa: E402
from edgetune.targets import load_target  # noqa: E402

MODES = ("shipped", "adapted", "fresh")


def accuracy(pred: np.ndarray, meas: np.ndarray) -> dict[str, Any]:
    """Shares within +-5/10%, relative errors and Spearman rank correlation of ``pred`` against ``meas``."""
    if not len(meas):
        return {"networks": 0}
    from scipy.stats import spearmanr

    rel = pred / meas - 1.0
    rho = float(spearmanr(pred, meas).statistic) if len(meas) > 2 else float("nan")
    return {"networks": int(len(meas)), "within_5pct": round(float(np.mean(np.abs(rel) <= 0.05)), 4),
            "within_10pct": round(float(np.mean(np.abs(rel) <= 0.10)), 4), "spearman": round(rho, 4),
            "rmspe": round(float(np.sqrt(np.mean(rel ** 2))), 4), "mape": round(float(np.mean(np.abs(rel))), 4),
            "median_error": round(float(np.median(rel)), 4)}


def network_flops_baseline(folder: Path) -> Optional[tuple[float, float]]:
    """Network latency = a + b x MACs, fitted (relative error) on the whole networks the profile measured."""
    from edgetune.predict._graph import graph_from_dict

    path = folder / "chains.jsonl"
    if not path.exists():
        return None
    chains = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [(graph_from_dict(c["graph"]).macs, c["latency_ms"]) for c in chains if c.get("latency_ms", 0) > 0]
    if len(rows) < 10:
        return None
    macs, ms = np.array(rows, dtype=float).T
    (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(macs), macs], axis=1) / ms[:, None], np.ones_like(ms), rcond=None)
    return float(a), float(b)


def family(name: str) -> str:
    return name.rstrip("0123456789")


def shipped_folder(args: argparse.Namespace, target: Any) -> Path:
    """The profile the ``shipped`` mode scores: ``--profiles-dir``'s, else the one shipped with edgetune."""
    from edgetune._locations import shipped_dir

    root = args.profiles_dir or shipped_dir("profiles")
    return profile_folder(target.name, args.runtime, root)


def adapted_predictor(args: argparse.Namespace, target: Any, shipped: Path) -> KernelPredictor:
    """The shipped profile corrected for this machine, adapted in a copy under ``--out`` (the shipped stays as it is)."""
    import shutil

    from edgetune.predict._adapt import adapt_profile, correction_from, load_adapted

    root = args.out / "profiles-adapted"
    folder = profile_folder(target.name, args.runtime, root)
    adapted = load_adapted(folder, current_machine()) if args.reuse_adapted and folder.exists() else None
    if adapted is None and args.rescore:  # --rescore times nothing, so it cannot adapt either
        raise SystemExit(f"--rescore: no adaptation of this machine in {folder}; run without --rescore first")
    if adapted is None:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(shipped, folder, ignore=shutil.ignore_patterns("adapted"))
        result = adapt_profile(target, args.runtime, args.adapt_budget, root,
                               progress=lambda m: print(f"[adapt] {m}", flush=True))
        print(f"adapted in {result.measure_s:.0f} s of timing: {result.fitted.summary()}", flush=True)
        adapted = load_adapted(folder, current_machine())
    predictor = KernelPredictor(folder)
    predictor.machine = correction_from(adapted)  # type: ignore[arg-type]
    return predictor


def predictors(args: argparse.Namespace, target: Any) -> dict[str, KernelPredictor]:
    """The kernel predictor of every requested mode (profiling or adapting first where a mode needs it)."""
    out: dict[str, KernelPredictor] = {}
    if "fresh" in args.modes and args.rescore:  # the fresh profile as it is: no profiling
        out["fresh"] = KernelPredictor(profile_folder(target.name, args.runtime, args.fresh_profiles_dir))
    elif "fresh" in args.modes:
        started = time.perf_counter()
        result = profile(target, args.runtime, args.fresh_budget, args.fresh_profiles_dir, fresh=not args.resume_fresh,
                         progress=lambda m: print(f"[fresh profile] {m}", flush=True))
        print(f"fresh profile: {result.kernels} kernels in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
        out["fresh"] = KernelPredictor(result.folder)
    shipped = shipped_folder(args, target)
    if "shipped" in args.modes:
        out["shipped"] = KernelPredictor(shipped)
    if "adapted" in args.modes:
        if taken_here((out.get("shipped") or KernelPredictor(shipped)).metadata):  # `profile --adapt` refuses it too
            print("adapted: left out, the shipped profile was taken on this machine (adapting is for another CPU)", flush=True)
        else:
            out["adapted"] = adapted_predictor(args, target, shipped)
    return out


def calibrated(predictors_: dict[str, KernelPredictor], target: Any, args: argparse.Namespace) -> dict[str, KernelPredictor]:
    """Each mode whose profile stores this machine's reference latencies (fresh, a shipped profile taken
    here) again, rescaled for the machine's speed now as ``predict --calibrate`` and the search do: the
    references re-timed right after the ground truth (about 10 s), or, re-scoring, the factor that run found
    against the same stored reference latencies."""
    earlier = json.loads(args.rescore.read_text()).get("modes", {}) if args.rescore else {}
    out = {}
    for name, predictor in predictors_.items():
        if name == "adapted":  # its correction was fitted on references timed moments before
            continue
        references = stored_references(predictor.folder, None, current_machine())
        if args.rescore:  # a factor holds for the reference latencies it was found against, whichever mode had them
            stamp = (references or {}).get("measured")
            stored = [m["calibration"] for m in earlier.values() if m.get("calibration") and m.get("references_measured") == stamp]
            # ... re-read against what the profile now says of the machine's speed when they were stored
            found = (Calibration.from_ratios(stored[0]["ratios"], stored[0]["noise"], stored[0]["seconds"],
                                             float((references or {}).get("speed_factor", 1.0))) if stamp and stored else None)
            if found is None and earlier.get(f"{name}_calibrated"):
                print(f"{name}: that run calibrated against other reference latencies; no calibrated view", flush=True)
        else:
            found = calibrate(references, target, args.runtime, predictor.threads) if references else None
        if found is None:
            continue
        copy = KernelPredictor(predictor.folder)
        copy.calibrate_with(found)
        out[f"{name}_calibrated"] = copy
        print(f"{name}: {found.message()}", flush=True)
    return out


def stored_truth(path: Path, graphs: list) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    """The measurements of an earlier run (``--rescore``), by network name (NaN where it has none), and the
    machine they were measured on."""
    try:
        data = json.loads(path.read_text())
        detail = {n["name"]: n for n in data["networks_detail"]}
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"cannot read measurements from {path}: {exc}; give a predictor_<runtime>_<time>.json") from None
    rows = [detail.get(g.name, {}) for g in graphs]
    return (np.array([r.get("measured_ms", np.nan) for r in rows], float),
            np.array([r.get("pass_gap", np.nan) for r in rows], float), 0.0,
            {"cpu_model": data.get("machine"), "isa": data.get("machine_isa")})


def ground_truth(target: Any, runtime: str, threads: int, graphs: list) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    """(lower of two passes, relative disagreement of the passes) per network, the seconds it took and this
    machine; isolated workers."""
    started = time.perf_counter()
    with GraphMeasurer(target, runtime, threads, config=NETWORK_CONFIG, interleave=4) as measurer:
        records, stopped = measure_references(measurer.measure, graphs, passes=2)
    if stopped:
        raise SystemExit("interrupted")
    by_index = {r["index"]: r for r in records}
    missing = [g.name for i, g in enumerate(graphs) if i not in by_index]
    if missing:
        print(f"not measured (failed to run): {', '.join(missing)}", flush=True)
    truth = np.array([by_index[i]["latency_ms"] if i in by_index else np.nan for i in range(len(graphs))])
    gap = np.array([max(by_index[i]["passes_ms"]) / min(by_index[i]["passes_ms"]) - 1.0 if i in by_index else np.nan
                    for i in range(len(graphs))])
    return truth, gap, time.perf_counter() - started, current_machine()


SMALL_MS = 0.1  # networks measured under this are scored apart as well (``reproducible_by_size``)


def earlier_truths(args: argparse.Namespace, machine: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored measured truths in ``--out`` of the machine this truth was measured on, but this one (``--rescore``)."""
    this = {"machine": machine["cpu_model"], "isa": machine["isa"]}
    rescored = args.rescore.stem.rsplit("_", 1)[-1] if args.rescore else None
    return [t for t in stored_truths(args.out, args.runtime) if same_machine(t, this) and t["time"] != rescored]


def size_bands(truth: np.ndarray, agree: np.ndarray) -> dict[str, np.ndarray]:
    """The networks that reproduce, on each side of ``SMALL_MS`` measured: band name -> mask."""
    small = truth < SMALL_MS
    return {f"under_{SMALL_MS}_ms": agree & small, f"from_{SMALL_MS}_ms": agree & ~small}


def score(pred: np.ndarray, truth: np.ndarray, agree: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Overall, on networks that reproduce, seen vs held-out, and per family."""
    held = np.array([family(n) in HELD_OUT_FAMILIES for n in names])
    out = {"all": accuracy(pred, truth), "reproducible_5pct": accuracy(pred[agree], truth[agree]),
           "seen_families": accuracy(pred[~held], truth[~held]), "held_out_families": accuracy(pred[held], truth[held]),
           "per_family": {}}
    for fam in sorted({family(n) for n in names}):
        idx = np.array([family(n) == fam for n in names])
        out["per_family"][fam] = accuracy(pred[idx], truth[idx])
    # the networks that reproduce, by measured size: under 0.1 ms the profiler's per-node bookkeeping is
    # about half of every node's time, so the end-to-end model takes half the kernel sum back out
    out["reproducible_by_size"] = {band: accuracy(pred[idx], truth[idx]) for band, idx in size_bands(truth, agree).items()}
    # what the model gets right apart from the machine's speed: within +-10% once the median
    # predicted/measured ratio is divided out (a perfect uniform drift correction; not a deployable number)
    ratio = float(np.median(pred / truth))
    out["shape_only"] = {"median_ratio": round(ratio, 4),
                         "all_within_10pct": accuracy(pred / ratio, truth)["within_10pct"],
                         "reproducible_5pct_within_10pct": accuracy(pred[agree] / ratio, truth[agree]).get("within_10pct")}
    return out


def interval_coverage(pred: np.ndarray, low: np.ndarray, high: np.ndarray, truth: np.ndarray,
                      agree: np.ndarray) -> dict[str, Any]:
    """How honest the predictions' 95% intervals are: the share of the networks that reproduce whose
    measured latency lies inside [low, high] (95% would be honest; 100% with wide intervals says they could
    be narrower), and the intervals' median half-width relative to the prediction, per size band as
    ``reproducible_by_size``."""
    def one(idx: np.ndarray) -> dict[str, Any]:
        idx = idx & np.isfinite(truth)
        if not idx.any():
            return {"networks": 0}
        inside = (truth[idx] >= low[idx]) & (truth[idx] <= high[idx])
        half = (high[idx] - low[idx]) / 2.0 / pred[idx]
        return {"networks": int(idx.sum()), "covered": round(float(np.mean(inside)), 4),
                "median_half_width": round(float(np.median(half)), 4)}

    return {"reproducible_5pct": one(agree), **{band: one(idx) for band, idx in size_bands(truth, agree).items()}}


def predict_mode(predictor: KernelPredictor, graphs: list, truth: np.ndarray, agree: np.ndarray) -> dict[str, Any]:
    """One mode's predictions, scores, estimated shares and prediction speed."""
    started = time.perf_counter()
    estimates = predictor.predict_many(graphs)
    batch_ms = (time.perf_counter() - started) * 1e3 / len(graphs)
    warm = []  # again: kernel shapes already seen share their feature rows, as in a search's thousands of trials
    for _ in range(3):
        started = time.perf_counter()
        predictor.predict_many(graphs)
        warm.append((time.perf_counter() - started) * 1e3 / len(graphs))
    pred = np.array([e.total_ms for e in estimates])
    low, high = np.array([e.low_ms for e in estimates]), np.array([e.high_ms for e in estimates])
    shares = np.array([e.extra.get("estimated_share", 0.0) for e in estimates])
    names = [g.name for g in graphs]
    result = {**score(pred, truth, agree, names),
              "estimated_share": {"median": round(float(np.median(shares)), 4), "max": round(float(np.max(shares)), 4),
                                  "networks_with_estimates": int(np.sum(shares > 0))},
              "interval": interval_coverage(pred, low, high, truth, agree),
              "networks_leaving_ops_out": int(sum(1 for e in estimates if e.uncovered)),
              "prediction_ms_per_network_batched": round(batch_ms, 4),
              "prediction_ms_per_network_batched_warm": round(min(warm), 4),
              "median_layers": int(np.median([len(g.ops) for g in graphs])),
              "machine_correction": estimates[0].extra.get("machine_correction") if estimates else None,
              # how much of the profile was timed while other load slowed the machine (``_drift.disturbed_share``)
              "profile_disturbed": (predictor.metadata.get("in_network") or {}).get("disturbed"),
              # groups of networks the profile timed again for it (``_drift.Retimer``); None before re-timing
              "profile_retimed": predictor.metadata.get("retimed")}
    folder = predictor.folder
    flops = np.array([e.total_ms for e in FlopsPredictor(folder).predict_many(graphs)])
    fit = network_flops_baseline(folder)
    result["flops_per_kernel"] = score(flops, truth, agree, names)["all"]
    if fit is not None:
        result["flops_per_network"] = score(np.array([fit[0] + fit[1] * g.macs for g in graphs]), truth, agree, names)["all"]
    return {"predictions_ms": pred, **result}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="host-cpu")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--modes", default="shipped,adapted", help=f"comma-separated, of: {', '.join(MODES)}")
    parser.add_argument("--count", type=int, default=60, help="networks of the seen families")
    parser.add_argument("--heldout-count", type=int, default=50, help="networks of the held-out families")
    parser.add_argument("--profiles-dir", type=Path, default=None,
                        help="profiles root whose <target>/<runtime> is scored as 'shipped' (default: the profiles shipped with edgetune)")
    parser.add_argument("--adapt-budget", type=float, default=3.0, help="minutes of timing reference networks (adapted)")
    parser.add_argument("--reuse-adapted", action="store_true", help="use this machine's adaptation if there is one")
    parser.add_argument("--fresh-budget", type=float, default=30.0, help="minutes of profiling (fresh)")
    parser.add_argument("--fresh-profiles-dir", type=Path, default=ROOT / "benchmarks" / "results" / "profiles-fresh")
    parser.add_argument("--resume-fresh", action="store_true", help="continue the fresh profile there instead of restarting")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rescore", type=Path, default=None,
                        help="an earlier result JSON: predict its networks again against its measurements (no timing, no "
                             "profiling; fresh and adapted use the profiles already in --fresh-profiles-dir and --out)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.reuse_adapted = args.reuse_adapted or args.rescore is not None
    unknown = [m for m in args.modes if m not in MODES]
    if unknown or not args.modes:
        parser.error(f"unknown mode(s) {', '.join(unknown) or '(none given)'}; valid: {', '.join(MODES)}")
    return args


def main() -> None:
    args = parse()
    target = load_target(args.target)
    load = cpu_snapshot()
    found = predictors(args, target)
    threads = {p.threads for p in found.values()}
    if len(threads) != 1:
        raise SystemExit(f"the modes' profiles predict different thread counts ({sorted(threads)}); compare like with like")
    graphs = generate(args.count, args.seed) + generate_heldout(args.heldout_count, args.seed + 1)
    truth, gap, measure_s, machine = (stored_truth(args.rescore, graphs) if args.rescore
                                      else ground_truth(target, args.runtime, threads.pop(), graphs))
    ok = np.isfinite(truth)
    graphs, truth, gap = [g for g, k in zip(graphs, ok) if k], truth[ok], gap[ok]
    agree = gap <= 0.05
    found.update(calibrated(found, target, args))
    modes = {name: predict_mode(p, graphs, truth, agree) for name, p in found.items()}
    for name, p in found.items():
        modes[name]["profile_machine"] = p.metadata.get("environment", {}).get("cpu_model")
        if p.calibration is not None:
            modes[name]["calibration"] = p.calibration.to_dict()
            modes[name]["references_measured"] = (stored_references(p.folder, None, current_machine()) or {}).get("measured")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report = {
        "benchmark": "predictor", "target": target.name, "runtime": args.runtime, "time": stamp,
        # the machine the ground truth was measured on (each mode's profile says its own in ``profile_machine``)
        "machine": machine["cpu_model"], "machine_isa": machine["isa"], "networks": len(graphs),
        "ground_truth": "simulated" if target.simulated else "measured",  # a simulator's latency is never a measurement
        **({"rescored_from": args.rescore.name} if args.rescore else {}),
        "families": {f: sum(1 for g in graphs if family(g.name) == f) for f in sorted({family(g.name) for g in graphs})},
        "latency_range_ms": [round(float(truth.min()), 4), round(float(truth.max()), 4)],
        "repeatability": {"passes_agree_within_5pct": round(float(np.mean(gap <= 0.05)), 4),
                          "passes_agree_within_10pct": round(float(np.mean(gap <= 0.10)), 4),
                          "median_pass_gap": round(float(np.median(gap)), 4),
                          "note": "two passes in opposite order, each network alone in its worker process; a perfect "
                                  "predictor is within 10% of one pass about as often as the passes agree within 10%"},
        "measure_s": round(measure_s, 1), "other_load": other_load(load),
        "across_truths": across_truths({g.name: (float(t), float(d)) for g, t, d in zip(graphs, truth, gap)},
                                       earlier_truths(args, machine)),
        "modes": {name: {k: v for k, v in m.items() if k != "predictions_ms"} for name, m in modes.items()},
        "calibrated_note": "<mode>_calibrated: the same profile rescaled by its reference networks re-timed right "
                           "after the ground truth (what `predict --calibrate` and the search do); the factor is in "
                           "its `calibration`",
        "networks_detail": [{"name": g.name, "layers": len(g.ops), "macs": g.macs, "measured_ms": round(float(t), 5),
                             "pass_gap": round(float(d), 4),
                             **{f"{name}_ms": round(float(m["predictions_ms"][i]), 5) for name, m in modes.items()}}
                            for i, (g, t, d) in enumerate(zip(graphs, truth, gap))],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"predictor_{args.runtime}_{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("networks", "latency_range_ms", "repeatability", "measure_s", "across_truths")},
                     indent=2))
    for name, m in report["modes"].items():
        sizes = ", ".join(f"{size} {s.get('within_10pct')} of {s['networks']}" for size, s in m["reproducible_by_size"].items())
        print(f"{name}: all {m['all']}\n  reproducible {m['reproducible_5pct']}\n  held-out {m['held_out_families']}\n"
              f"  reproducible within 10% by size: {sizes}\n"
              f"  95% intervals: {m['interval']}\n"
              f"  estimated share {m['estimated_share']}, FLOPs/kernel {m['flops_per_kernel']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
