"""`edgetune report`: a self-contained HTML dashboard of the results store (inline SVG, no scripts)."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from edgetune.errors import ConfigError

MAX_RUNS = 30


def _trend_svg(points: Sequence[tuple[str, Optional[float], Optional[float], Optional[float]]], width: int = 420,
               height: int = 140) -> str:
    """Median per run with its 95% interval; x is run order."""
    values = [(i, m, lo, hi) for i, (_, m, lo, hi) in enumerate(points) if m is not None]
    if not values:
        return "<p>no measurements</p>"
    lo_all = min(v[2] if v[2] is not None else v[1] for v in values)
    hi_all = max(v[3] if v[3] is not None else v[1] for v in values)
    span = (hi_all - lo_all) or hi_all or 1.0
    pad = 30

    def x(i: int) -> float:
        return pad + (i / max(len(points) - 1, 1)) * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad + 10 - (v - lo_all) / span * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="trend">',
             f'<rect width="{width}" height="{height}" fill="#fafafa"/>',
             f'<text x="4" y="12" font-size="10">{hi_all:.4g} ms</text>',
             f'<text x="4" y="{height - 4}" font-size="10">{lo_all:.4g} ms</text>']
    for i, m, lo, hi in values:
        if lo is not None and hi is not None:
            parts.append(f'<line x1="{x(i):.1f}" y1="{y(lo):.1f}" x2="{x(i):.1f}" y2="{y(hi):.1f}" stroke="#9bd"/>')
    parts.append('<polyline fill="none" stroke="#26a" stroke-width="1.5" points="'
                 + " ".join(f"{x(i):.1f},{y(m):.1f}" for i, m, _, _ in values) + '"/>')
    for i, m, _, _ in values:
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(m):.1f}" r="2.5" fill="#26a">'
                     f'<title>{html.escape(points[i][0])}: {m:.4g} ms</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _histogram_svg(samples: Sequence[float], width: int = 260, height: int = 90) -> str:
    if not samples:
        return ""
    values = np.asarray(samples, dtype=float)
    cut = np.percentile(values, 99)  # the far tail would squash everything into one bar
    counts, edges = np.histogram(values[values <= cut], bins=24)
    top = counts.max() or 1
    bar = (width - 10) / len(counts)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="hist">']
    for k, c in enumerate(counts):
        h = (height - 22) * c / top
        parts.append(f'<rect x="{5 + k * bar:.1f}" y="{height - 14 - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" fill="#7a9"/>')
    parts.append(f'<text x="5" y="{height - 2}" font-size="10">{edges[0]:.4g}</text>')
    parts.append(f'<text x="{width - 5}" y="{height - 2}" font-size="10" text-anchor="end">{edges[-1]:.4g} ms (p99 cut)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return (row.get("entry") or row["model_name"], row["candidate"])


def _section(target: str, rows: list[dict[str, Any]]) -> str:
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
    simulated = any(r.get("simulated") for r in rows)
    out = [f'<section><h2>{html.escape(target)}{" (SIMULATED)" if simulated else ""}</h2>',
           f"<p>{len(runs)} run(s) shown; {html.escape(note)}</p>",
           "<table><tr><th>entry</th><th>candidate</th><th>latest median ms</th><th>verdict</th><th>ratio [95% CI]</th>"
           "<th>trend over runs</th><th>latest distribution</th></tr>"]
    for key in sorted(by_key):
        per_run = by_key[key]
        points = []
        for run in runs:
            ok = [r for r in per_run.get(run, []) if r["status"] == "ok" and r["samples_ms"]]
            if ok:
                samples = np.concatenate([np.asarray(r["samples_ms"], float) for r in ok])
                points.append((run, float(np.median(samples)), min(r["ci_low_ms"] or np.inf for r in ok),
                               max(r["ci_high_ms"] or 0 for r in ok)))
            else:
                points.append((run, None, None, None))
        latest_rows = [r for r in per_run.get(latest, []) if r["status"] == "ok"]
        latest_samples = [s for r in latest_rows for s in r["samples_ms"]]
        comparison = verdicts.get(key)
        verdict = comparison.verdict if comparison else "-"
        css = "bad" if comparison is not None and comparison.failed else ("good" if verdict == "improvement" else "")
        ratio = (f"{comparison.ratio:.3f} [{comparison.ci_low:.3f}, {comparison.ci_high:.3f}]"
                 if comparison is not None and comparison.ratio is not None else "-")
        median = f"{np.median(latest_samples):.4f}" if latest_samples else "-"
        out.append(f'<tr class="{css}"><td>{html.escape(key[0])}</td><td>{html.escape(key[1])}</td><td>{median}</td>'
                   f"<td>{html.escape(verdict)}</td><td>{ratio}</td><td>{_trend_svg(points)}</td>"
                   f"<td>{_histogram_svg(latest_samples)}</td></tr>")
    out.append("</table></section>")
    return "\n".join(out)


def write_dashboard(rows: list[dict[str, Any]], path: Path, store_label: str, target: Optional[str] = None) -> Path:
    """Render every target's history in ``rows`` (the results store) into one HTML file."""
    if target:
        rows = [r for r in rows if r["target"] == target]
    if not rows:
        raise ConfigError(f"the results store {store_label} has no measurements{' for ' + target if target else ''}; "
                          "run `edgetune bench` first")
    targets = sorted({r["target"] for r in rows})
    sections = "\n".join(_section(t, [r for r in rows if r["target"] == t]) for t in targets)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edgetune results</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ddd; padding: 4px 8px; vertical-align: middle; }}
tr.bad {{ background: #fde2e2; }}
tr.bad td:nth-child(4) {{ color: #b00; font-weight: bold; }}
tr.good {{ background: #e6f5ea; }}
</style></head><body>
<h1>edgetune results</h1>
<p>From {html.escape(store_label)}, generated {stamp}. Latencies are measured (simulated targets are marked).
Verdicts: hierarchical bootstrap of the ratio of medians (sessions, then samples), regression when the 95% interval
is above 1 and the slowdown above the entry's threshold (5% by default).</p>
{sections}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
