"""OUT/report.html for a compile: candidate table and latency-vs-accuracy plot (inline SVG, no scripts)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

from edgetune.report._layers import layers_section

WIDTH, HEIGHT, PAD = 720, 420, 60


def _quality(candidate: dict[str, Any]) -> float | None:
    accuracy = candidate.get("accuracy")
    return float(accuracy["value"]) if accuracy else None


def pareto_front(points: Sequence[tuple[str, float, float]]) -> set[str]:
    """Names of points not dominated in (lower latency, higher quality)."""
    front = set()
    for name, latency, quality in points:
        dominated = any(
            (l2 <= latency and q2 >= quality) and (l2 < latency or q2 > quality) for _, l2, q2 in points
        )
        if not dominated:
            front.add(name)
    return front


def _plot(points: list[tuple[str, float, float]], front: set[str], winner: str | None, metric: str) -> str:
    if not points:
        return "<p>No candidate was measured.</p>"
    lat = [p[1] for p in points]
    qual = [p[2] for p in points]
    lo_l, hi_l = min(lat) * 0.9, max(lat) * 1.1
    lo_q, hi_q = min(qual) - 0.01, max(max(qual) + 0.01, min(qual) + 0.02)

    def x(v: float) -> float:
        return PAD + (v - lo_l) / (hi_l - lo_l or 1) * (WIDTH - 2 * PAD)

    def y(v: float) -> float:
        return HEIGHT - PAD - (v - lo_q) / (hi_q - lo_q or 1) * (HEIGHT - 2 * PAD)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="latency versus {html.escape(metric)}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle" font-size="13">median latency (ms, measured)</text>',
        f'<text x="15" y="{HEIGHT / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 15 {HEIGHT / 2})">'
        f'{html.escape(metric)}</text>',
    ]
    for i in range(5):
        lv = lo_l + (hi_l - lo_l) * i / 4
        qv = lo_q + (hi_q - lo_q) * i / 4
        parts.append(f'<text x="{x(lv):.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle" font-size="11">{lv:.3g}</text>')
        parts.append(f'<text x="{PAD - 6}" y="{y(qv) + 4:.1f}" text-anchor="end" font-size="11">{qv:.1%}</text>')
    ordered = sorted((p for p in points if p[0] in front), key=lambda p: p[1])
    if len(ordered) > 1:
        path = " ".join(f"{x(p[1]):.1f},{y(p[2]):.1f}" for p in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#2a7" stroke-width="2" stroke-dasharray="5,3"/>')
    for name, latency, quality in points:
        color = "#d33" if name == winner else ("#2a7" if name in front else "#888")
        radius = 7 if name == winner else 5
        parts.append(f'<circle cx="{x(latency):.1f}" cy="{y(quality):.1f}" r="{radius}" fill="{color}">'
                     f'<title>{html.escape(name)}: {latency:.4g} ms, {quality:.2%}</title></circle>')
        parts.append(f'<text x="{x(latency) + 8:.1f}" y="{y(quality) - 6:.1f}" font-size="10">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _cell(value: Any) -> str:
    return f"<td>{html.escape(str(value))}</td>"


def _measured_line(manifest: dict[str, Any], simulated: str) -> str:
    if manifest.get("measured", True) is False:
        return "Built only (--build-only): nothing was measured on the target."
    return f"Latencies are measured on the target{simulated.lower()}."


def write_compile_report(path: Path, manifest: dict[str, Any]) -> Path:
    """Write a self-contained HTML report of a compile manifest; returns the path."""
    candidates = manifest["candidates"]
    winner = (manifest.get("winner") or {}).get("name")
    points = [
        (c["name"], c["latency"]["median_ms"], _quality(c) if _quality(c) is not None else 1.0)
        for c in candidates if c.get("latency")
    ]
    metric_names = {c["accuracy"]["metric"] for c in candidates if c.get("accuracy")}
    metric = "top-1 accuracy" if "top1_accuracy" in metric_names else "top-1 agreement with fp32"
    front = pareto_front(points)
    target = manifest["target"]
    simulated = " (SIMULATED)" if target.get("simulated") else ""
    rows = []
    for c in candidates:
        lat = c.get("latency") or {}
        acc = c.get("accuracy") or {}
        mark = "winner" if c["name"] == winner else ("pareto" if c["name"] in front else "")
        rows.append(
            f'<tr class="{mark} {html.escape(c["status"])}">'
            + _cell(c["name"]) + _cell(c["status"])
            + _cell(f'{lat["median_ms"]:.4f}' if lat else "-")
            + _cell(f'{lat["cv"]:.1%}' if lat else "-")
            + _cell(f'{acc["value"]:.2%}' if acc else "-")
            + _cell(f'{acc["drop_points"]:.2f}' if acc else "-")
            + _cell(f'{c["artifact_size_bytes"] / 1024:.1f}' if c.get("artifact_size_bytes") else "-")
            + _cell(f'{c["rss_delta_mb"]:.1f}' if c.get("rss_delta_mb") is not None else "-")
            + _cell(c.get("reason") or c.get("stopped_early") or "")
            + _cell((c.get("device_figures") or {}).get("text") or "-")
            + "</tr>"
        )
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in manifest.get("warnings") or [])
    modes = sorted({c["measurement_mode"] for c in candidates if c.get("measurement_mode")})
    measured = f"<p><b>Measured:</b> {html.escape('; '.join(modes))}, one at a time.</p>" if modes else ""
    profiles = [c["per_layer"] for c in candidates if c.get("per_layer")]
    per_layer = layers_section(profiles) if profiles else ""
    reason = (manifest.get("winner") or {}).get("reason") or manifest.get("no_winner_reason") or ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>edgetune compile: {html.escape(manifest["input_model"]["name"])} on {html.escape(target["name"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:first-child, td:nth-child(2), td:nth-last-child(2), td:last-child {{ text-align: left; }}
tr.winner {{ background: #fde2e2; font-weight: bold; }}
tr.pareto {{ background: #e6f5ea; }}
tr.failed td, tr.skipped td {{ color: #888; }}
.warn {{ color: #a60; }}
</style></head><body>
<h1>{html.escape(manifest["input_model"]["name"])} on {html.escape(target["name"])}{simulated}</h1>
<p>Run {html.escape(manifest["run_id"])}, {manifest["threads"]} thread(s), edgetune {html.escape(manifest["edgetune_version"])},
{html.escape(manifest["environment"].get("cpu_model", ""))}. {_measured_line(manifest, simulated)}</p>
{measured}
<p><b>Winner:</b> {html.escape(winner or "none")} &mdash; {html.escape(reason)}</p>
<ul class="warn">{warnings}</ul>
<h2>Latency vs {html.escape(metric)}</h2>
<p>Green: Pareto front (no other candidate is both faster and more accurate). Red: winner.</p>
{_plot(points, front, winner, metric)}
<h2>Candidates</h2>
<table><tr><th>candidate</th><th>status</th><th>median ms</th><th>cv</th><th>{html.escape(metric)}</th>
<th>drop (points)</th><th>size KB</th><th>RSS +MB</th><th>note</th><th>device (SIMULATED / ESTIMATED)</th></tr>
{"".join(rows)}
</table>
{per_layer}
</body></html>
"""
    path.write_text(page)
    return path
