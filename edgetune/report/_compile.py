"""OUT/report.html for a compile: candidate table and latency-vs-accuracy plot (inline SVG, no scripts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from edgetune.report._layers import DEFAULT_TOP, section_context
from edgetune.report._plots import latency_quality_svg
from edgetune.report._templates import render, svg_markup


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


def _measured_line(manifest: dict[str, Any], simulated: str) -> str:
    if manifest.get("measured", True) is False:
        return "Built only (--build-only): nothing was measured on the target."
    return f"Latencies are measured on the target{simulated.lower()}."


def _row(c: dict[str, Any], winner: Optional[str], front: set[str]) -> dict[str, Any]:
    """One candidate's table row: its CSS classes and its cells as text."""
    lat = c.get("latency") or {}
    acc = c.get("accuracy") or {}
    return {
        "mark": "winner" if c["name"] == winner else ("pareto" if c["name"] in front else ""),
        "status": c["status"],
        "cells": [
            c["name"], c["status"],
            f'{lat["median_ms"]:.4f}' if lat else "-",
            f'{lat["cv"]:.1%}' if lat else "-",
            f'{acc["value"]:.2%}' if acc else "-",
            f'{acc["drop_points"]:.2f}' if acc else "-",
            f'{c["artifact_size_bytes"] / 1024:.1f}' if c.get("artifact_size_bytes") else "-",
            f'{c["rss_delta_mb"]:.1f}' if c.get("rss_delta_mb") is not None else "-",
            c.get("reason") or c.get("stopped_early") or "",
            (c.get("device_figures") or {}).get("text") or "-",
        ],
    }


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
    front = pareto_front(points)  # type: ignore[arg-type]
    target = manifest["target"]
    simulated = " (SIMULATED)" if target.get("simulated") else ""
    noisy = (manifest.get("timing_noise") or {}).get("warning")
    page = render(
        "compile.html.j2",
        model=manifest["input_model"]["name"], target=target["name"], simulated=simulated,
        run_id=manifest["run_id"], threads=manifest["threads"], version=manifest["edgetune_version"],
        cpu_model=manifest["environment"].get("cpu_model", ""), measured_line=_measured_line(manifest, simulated),
        modes=sorted({c["measurement_mode"] for c in candidates if c.get("measurement_mode")}),
        winner=winner, reason=(manifest.get("winner") or {}).get("reason") or manifest.get("no_winner_reason") or "",
        warnings=[*(manifest.get("warnings") or []), *([noisy] if noisy else [])], metric=metric,
        plot=svg_markup(latency_quality_svg(points, front, winner, metric)) if points else None,  # type: ignore[arg-type]
        rows=[_row(c, winner, front) for c in candidates],
        layer_profiles=section_context([c["per_layer"] for c in candidates if c.get("per_layer")], DEFAULT_TOP),
    )
    path.write_text(page)
    return path
