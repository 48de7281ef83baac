"""Per-layer profiles on disk: JSON, CSV, a bar chart (SVG) of the slowest layers and an HTML page.

The chart and the HTML section read a profile's ``to_dict()`` form, so that a compile report
rendered from ``manifest.json`` shows the same chart as ``bench --per-layer``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from edgetune.bench._layers import LayerProfile, write_layers_csv, write_layers_json

BAR_HEIGHT = 18
LABEL_WIDTH = 300
BAR_WIDTH = 420
DEFAULT_TOP = 15


@dataclass(frozen=True)
class LayerFiles:
    """Where one per-layer report was written."""

    json: Path
    csv: Path
    html: Path
    charts: tuple[Path, ...]


def _top(profile: dict[str, Any], top: int) -> list[dict[str, Any]]:
    return sorted(profile.get("layers") or [], key=lambda layer: -layer["latency_ms"])[:top]


def layers_svg(profile: dict[str, Any], top: int = DEFAULT_TOP) -> str:
    """A horizontal bar chart of the ``top`` slowest layers of one profile (``LayerProfile.to_dict()``)."""
    layers = _top(profile, top)
    if not layers:
        return f"<p>No per-layer figures: {html.escape(profile.get('note') or 'none reported')}.</p>"
    widest = max(layer["latency_ms"] for layer in layers) or 1.0
    height = BAR_HEIGHT * len(layers) + 40
    unit = "ms, SIMULATED" if profile.get("simulated") else "ms, measured"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_WIDTH + BAR_WIDTH + 90}" height="{height}" '
             f'role="img" aria-label="slowest layers of {html.escape(profile["candidate"])}">',
             f'<text x="{LABEL_WIDTH}" y="14" font-size="12">time per layer ({unit})</text>']
    for row, layer in enumerate(layers):
        y = 24 + row * BAR_HEIGHT
        width = layer["latency_ms"] / widest * BAR_WIDTH
        label = f'{layer["name"]} ({layer["op_type"]})'
        short = label if len(label) <= 48 else label[:45] + "..."
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 12}" text-anchor="end" font-size="11">'
                     f'<title>{html.escape(label)}</title>{html.escape(short)}</text>')
        parts.append(f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{width:.1f}" height="{BAR_HEIGHT - 4}" fill="#4a7bd0">'
                     f'<title>{layer["latency_ms"]:.4g} ms, {layer["share_of_layers"]:.1%} of the layers</title></rect>')
        parts.append(f'<text x="{LABEL_WIDTH + width + 4:.1f}" y="{y + 12}" font-size="11">'
                     f'{layer["latency_ms"]:.4g} ({layer["share_of_layers"]:.0%})</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def coverage_sentence(profile: dict[str, Any]) -> str:
    """What share of the end-to-end median the profile's layers add up to, in words."""
    count, total, end = len(profile.get("layers") or []), profile.get("layers_ms") or 0.0, profile.get("end_to_end_ms")
    if not count:
        return f"no per-layer figures ({profile.get('note') or 'none reported'})"
    if not end:
        return f"{count} layers add up to {total:.4f} ms"
    return f"{count} layers add up to {total:.4f} ms, {total / end:.0%} of the end-to-end median {end:.4f} ms"


def layers_section(profiles: Sequence[dict[str, Any]], top: int = DEFAULT_TOP) -> str:
    """An HTML section: per candidate, where its figures come from, their coverage and the bar chart."""
    parts = ["<h2>Per-layer profile</h2>",
             "<p>Each layer as the runtime's own profiler (or the simulator) reports it. Profilers time the "
             "layers, not what runs between them, and profiling costs time itself: the share of the "
             "end-to-end median the layers add up to is given beside each chart.</p>"]
    for profile in profiles:
        label = " (SIMULATED)" if profile.get("simulated") else ""
        parts.append(f"<h3>{html.escape(profile['candidate'])}{label}</h3>")
        parts.append(f"<p>{html.escape(profile.get('source') or '')}. {html.escape(coverage_sentence(profile))}.</p>")
        parts.append(layers_svg(profile, top))
    return "\n".join(parts)


def write_layers_report(profiles: Sequence[LayerProfile], folder: Path, top: int = DEFAULT_TOP,
                        title: str = "per-layer profile") -> LayerFiles:
    """Write ``layers.json``, ``layers.csv``, one ``<candidate>.layers.svg`` per profile and ``layers.html``."""
    folder.mkdir(parents=True, exist_ok=True)
    dicts = [p.to_dict() for p in profiles]
    charts = []
    for profile in dicts:
        if profile["layers"]:
            chart = folder / f"{re.sub(r'[^A-Za-z0-9._@-]+', '_', profile['candidate'])}.layers.svg"
            chart.write_text(layers_svg(profile, top))
            charts.append(chart)
    page = folder / "layers.html"
    page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}</style></head><body>
<h1>{html.escape(title)}</h1>
{layers_section(dicts, top)}
</body></html>
""")
    return LayerFiles(write_layers_json(profiles, folder / "layers.json"), write_layers_csv(profiles, folder / "layers.csv"),
                      page, tuple(charts))
