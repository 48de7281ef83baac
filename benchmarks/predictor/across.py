"""The measurement's repeatability across hours: how well one ground truth predicts another on the same machine.

A truth's two passes (``run.py``) say whether a network reproduces within a minute. Over hours the
machine changes more than that: its speed (which ``predict --calibrate`` rescales) and, under a
neighbour's load, the ratios between networks (memory-bound ones slow more). A profile is measured at
one hour and scored at another, so no predictor, however exact, can be expected to beat what an
earlier measurement of the same networks on the same machine scores. This module scores each stored
truth of a machine as the "prediction" of the others:

- ``raw``: within +-10% as measured (what a fresh profile is judged on);
- ``shape``: within +-10% once the median ratio is divided out (what is left after a perfect speed
  rescale; the adapted and calibrated modes are judged against this).

Both over the scored truth's networks whose passes agreed within 5%, as ``run.py`` scores a mode.
The pairwise figure is conservative: the earlier truth carries its own noise, which a noiseless
predictor would not, so a good profile may score above it on single truths.

    .venv/bin/python benchmarks/predictor/across.py            # every stored truth, by machine

Truths are the measured ``predictor_onnxruntime_<time>.json`` files in benchmarks/results/ (not re-scorings,
not simulated); the machine is the one the truth was measured on (``machine``; files written before
2026-12-05 named the first mode's profile's machine there, and four that were measured on the AMD EPYC VM
say so in ``machine_corrected``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results"
AGREE = 0.05  # a network reproduces when its two passes agree within this


def read_truth(path: Path) -> Optional[dict[str, Any]]:
    """A stored measured truth: {"time", "machine", "isa", "networks": name -> (ms, pass gap)}; None for a
    re-scoring, a simulated truth, or a file from before passes were recorded."""
    data = json.loads(path.read_text())
    if data.get("rescored_from") or data.get("ground_truth") != "measured":
        return None
    detail = data.get("networks_detail") or []
    if not detail or "pass_gap" not in detail[0]:
        return None
    return {"time": data["time"], "machine": data.get("machine"), "isa": data.get("machine_isa"),
            "networks": {n["name"]: (float(n["measured_ms"]), float(n["pass_gap"])) for n in detail}}


def stored_truths(folder: Path = RESULTS, runtime: str = "onnxruntime") -> list[dict[str, Any]]:
    """Every stored measured truth of ``runtime`` in ``folder``, oldest first."""
    found = (read_truth(p) for p in sorted(folder.glob(f"predictor_{runtime}_*.json")))
    return [t for t in found if t is not None]


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same CPU model, and the same ISA features where both truths recorded them (as a profile's machine is judged)."""
    from edgetune.predict._machine import same_machine as same_cpu

    return same_cpu({"cpu_model": a.get("machine"), "isa": a.get("isa") or []},
                    {"cpu_model": b.get("machine"), "isa": b.get("isa") or []})


def within(predicted: dict[str, float], truth: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """``predicted`` (name -> ms) scored on ``truth``'s networks that reproduce: raw and shape within 10%."""
    names = [n for n, (_, gap) in truth.items() if gap <= AGREE and predicted.get(n, 0.0) > 0]
    if not names:
        return {"networks": 0}
    ratio = np.array([predicted[n] / truth[n][0] for n in names])
    shape = ratio / np.median(ratio)
    return {"networks": len(names), "raw": round(float(np.mean(np.abs(ratio - 1.0) <= 0.10)), 4),
            "shape": round(float(np.mean(np.abs(shape - 1.0) <= 0.10)), 4)}


def across_truths(truth: dict[str, tuple[float, float]], others: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """How the other truths of the machine, each used as a prediction, score on ``truth``: mean, worst and best."""
    scores = [s for s in (within({n: ms for n, (ms, _) in o["networks"].items()}, truth) for o in others)
              if s["networks"]]
    if not scores:
        return {"truths": 0, "note": "no other measured truth of this machine is stored"}
    out: dict[str, Any] = {"truths": len(scores)}
    for key in ("raw", "shape"):
        values = [s[key] for s in scores]
        out[key] = {"mean": round(float(np.mean(values)), 4), "min": round(min(values), 4), "max": round(max(values), 4)}
    out["note"] = ("each other stored truth of this machine scored as the prediction of this one (networks whose passes "
                   "agree within 5%): the measurement's own repeatability across hours, a conservative ceiling "
                   "for a profile taken at another hour (raw) or rescaled for today's speed (shape)")
    return out


def machine_table(truths: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per truth: its repeatable networks and ``across_truths`` over the machine's other truths."""
    rows = []
    for truth in truths:
        others = [o for o in truths if o is not truth and same_machine(o, truth)]
        rows.append({"time": truth["time"], "machine": truth["machine"],
                     "reproducible": sum(1 for _, gap in truth["networks"].values() if gap <= AGREE),
                     **across_truths(truth["networks"], others)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--runtime", default="onnxruntime")
    args = parser.parse_args()
    rows = machine_table(stored_truths(args.results, args.runtime))
    for machine in sorted({r["machine"] for r in rows}):
        mine = [r for r in rows if r["machine"] == machine and r["truths"]]
        print(f"{machine}: {len(mine)} truths")
        for r in mine:
            print(f"  {r['time']}  {r['reproducible']:3d} reproduce  raw {r['raw']['mean']:.3f} "
                  f"[{r['raw']['min']:.2f}-{r['raw']['max']:.2f}]  shape {r['shape']['mean']:.3f}")
        if mine:
            print(f"  mean  raw {np.mean([r['raw']['mean'] for r in mine]):.3f}  "
                  f"shape {np.mean([r['shape']['mean'] for r in mine]):.3f}")


if __name__ == "__main__":
    main()
