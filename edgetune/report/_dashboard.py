"""`edgetune report`: a self-contained HTML dashboard of the results store (inline SVG, no scripts)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgetune.errors import ConfigError
from edgetune.report._plots import TrendPoint, histogram_svg, trend_svg
from edgetune.report._templates import render, svg_markup

MAX_RUNS = 30


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return (row.get("entry") or row["model_name"], row["candidate"])


def _trend(runs: list[str], per_run: dict[str, list[dict[str, Any]]]) -> list[TrendPoint]:
    """(run, median, lowest CI low, highest CI high) of one entry's ok sessions in each run; Nones where none."""
    points: list[TrendPoint] = []
    for run in runs:
        ok = [r for r in per_run.get(run, []) if r["status"] == "ok" and r["samples_ms"]]
        if ok:
            samples = np.concatenate([np.asarray(r["samples_ms"], float) for r in ok])
            points.append((run, float(np.median(samples)), min(r["ci_low_ms"] or np.inf for r in ok),
                           max(r["ci_high_ms"] or 0 for r in ok)))
        else:
            points.append((run, None, None, None))
    return points


def _row(key: tuple[str, str], runs: list[str], per_run: dict[str, list[dict[str, Any]]],
         comparison: Any) -> dict[str, Any]:
    """One (entry, candidate) of the dashboard: latest median, verdict, ratio and the two charts."""
    latest_samples = [s for r in per_run.get(runs[-1], []) if r["status"] == "ok" for s in r["samples_ms"]]
    verdict = comparison.verdict if comparison else "-"
    return {
        "css": "bad" if comparison is not None and comparison.failed else ("good" if verdict == "improvement" else ""),
        "entry": key[0], "candidate": key[1], "verdict": verdict,
        "median": f"{np.median(latest_samples):.4f}" if latest_samples else "-",
        "ratio": (f"{comparison.ratio:.3f} [{comparison.ci_low:.3f}, {comparison.ci_high:.3f}]"
                  if comparison is not None and comparison.ratio is not None else "-"),
        "trend": svg_markup(trend_svg(_trend(runs, per_run))),
        "histogram": svg_markup(histogram_svg(latest_samples)),
    }


def _section(target: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's part of the dashboard: its last MAX_RUNS runs, latest compared with the one before."""
    from edgetune.bench import compare

    runs: list[str] = []
    for row in rows:
        if row["run_id"] not in runs:
            runs.append(row["run_id"])
    runs = runs[-MAX_RUNS:]
    by_key: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["run_id"] in runs:
            by_key[_key(row)][row["run_id"]].append(row)
    latest, previous = runs[-1], (runs[-2] if len(runs) > 1 else None)
    verdicts: dict[tuple[str, str], Any] = {}
    note = "only one run so far: nothing to compare"
    if previous:
        try:
            comparisons = compare([r for r in rows if r["run_id"] == previous], [r for r in rows if r["run_id"] == latest])
            verdicts = {(c.entry, c.candidate): c for c in comparisons}
            note = f"latest run {latest} vs previous {previous}"
        except ConfigError as exc:
            note = f"latest vs previous not compared: {exc}"
    return {"target": target, "simulated": any(r.get("simulated") for r in rows), "runs": len(runs), "note": note,
            "rows": [_row(key, runs, by_key[key], verdicts.get(key)) for key in sorted(by_key)]}


def write_dashboard(rows: list[dict[str, Any]], path: Path, store_label: str, target: Optional[str] = None) -> Path:
    """Render every target's history in ``rows`` (the results store) into one HTML file."""
    if target:
        rows = [r for r in rows if r["target"] == target]
    if not rows:
        raise ConfigError(f"the results store {store_label} has no measurements{' for ' + target if target else ''}; "
                          "run `edgetune bench` first")
    sections = [_section(t, [r for r in rows if r["target"] == t]) for t in sorted({r["target"] for r in rows})]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render("dashboard.html.j2", store_label=store_label, stamp=stamp, sections=sections))
    return path
