"""Per-layer profiles on disk: JSON, CSV, a bar chart (SVG, matplotlib) of the slowest layers and an HTML page.

The chart and the HTML section read a profile's ``to_dict()`` form, so that a compile report
rendered from ``manifest.json`` shows the same chart as ``bench --per-layer``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from edgetune.bench._layers import LayerProfile, write_layers_csv, write_layers_json
from edgetune.report._plots import layer_bars_svg
from edgetune.report._templates import render, svg_markup

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
        from markupsafe import Markup

        return str(Markup("<p>No per-layer figures: {}.</p>").format(profile.get("note") or "none reported"))
    unit = "ms, SIMULATED" if profile.get("simulated") else "ms, measured"
    return layer_bars_svg([f'{layer["name"]} ({layer["op_type"]})' for layer in layers],
                          [layer["latency_ms"] for layer in layers], [layer["share_of_layers"] for layer in layers], unit)


def coverage_sentence(profile: dict[str, Any]) -> str:
    """What share of the end-to-end median the profile's layers add up to, in words."""
    count, total, end = len(profile.get("layers") or []), profile.get("layers_ms") or 0.0, profile.get("end_to_end_ms")
    if not count:
        return f"no per-layer figures ({profile.get('note') or 'none reported'})"
    if not end:
        return f"{count} layers add up to {total:.4f} ms"
    return f"{count} layers add up to {total:.4f} ms, {total / end:.0%} of the end-to-end median {end:.4f} ms"


def section_context(profiles: Sequence[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    """What templates/layers_section.html.j2 shows of each profile."""
    return [{"candidate": p["candidate"], "simulated": bool(p.get("simulated")), "source": p.get("source") or "",
             "coverage": coverage_sentence(p), "chart": svg_markup(layers_svg(p, top))} for p in profiles]


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
    page.write_text(render("layers.html.j2", title=title, layer_profiles=section_context(dicts, top)))
    return LayerFiles(write_layers_json(profiles, folder / "layers.json"), write_layers_csv(profiles, folder / "layers.csv"),
                      page, tuple(charts))
