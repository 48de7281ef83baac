"""The reports' charts, drawn with matplotlib and inlined as SVG (text stays text, no scripts).

matplotlib is imported inside the functions so that importing a report module (and ``edgetune --help``)
stays fast. Figures are made with ``matplotlib.figure.Figure`` directly, not pyplot: no global figure
manager and no GUI backend are involved, so nothing here depends on a display.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

# Text as <text> elements (searchable, small); a fixed salt makes the SVG's ids, and so the files, reproducible;
# no mathtext, since layer and candidate names may hold "$".
_RC: dict[str, Any] = {"svg.fonttype": "none", "svg.hashsalt": "edgetune", "text.parse_math": False, "font.size": 9,
       "axes.spines.top": False, "axes.spines.right": False}
FRONT, WINNER, OTHER, TRIAL = "#2a7", "#d33", "#888", "#1f77b4"

TrendPoint = tuple[str, Optional[float], Optional[float], Optional[float]]  # (run, median, CI low, CI high), ms


@contextmanager
def _figure(width_px: float, height_px: float) -> Iterator[Any]:
    """A figure of the given size in CSS pixels (96 to the inch), laid out to fit its labels."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        yield Figure(figsize=(width_px / 96, height_px / 96), dpi=96, layout="constrained")


def svg_text(figure: Any, tooltips: Mapping[str, str] = {}) -> str:
    """The figure as an ``<svg>`` element without XML prolog or DOCTYPE, so that it can be inlined in HTML.

    ``tooltips`` maps an artist's gid to the text a browser shows on hover: matplotlib writes each artist
    with a gid as ``<g id="gid">``, and an SVG ``<title>`` first inside a group is its tooltip.
    """
    from xml.sax.saxutils import escape

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})  # no date, no version
    text = buffer.getvalue()
    for gid, tip in tooltips.items():
        text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(tip)}</title>', 1)
    return text[text.index("<svg"):]


def latency_quality_svg(points: Sequence[tuple[str, float, float]], front: set[str], winner: Optional[str],
                        metric: str) -> str:
    """Compile report: each candidate's measured median latency against its accuracy; front dashed, winner red."""
    from matplotlib.ticker import PercentFormatter

    tips: dict[str, str] = {}
    with _figure(720, 420) as fig:
        ax = fig.add_subplot()
        ordered = sorted((p for p in points if p[0] in front), key=lambda p: p[1])
        if len(ordered) > 1:
            ax.plot([p[1] for p in ordered], [p[2] for p in ordered], color=FRONT, linewidth=2, linestyle="--")
        for index, (name, latency, quality) in enumerate(points):
            color = WINNER if name == winner else (FRONT if name in front else OTHER)
            dot = ax.scatter([latency], [quality], s=70 if name == winner else 40, color=color, zorder=3)
            dot.set_gid(f"candidate-{index}")
            tips[f"candidate-{index}"] = f"{name}: {latency:.4g} ms, {quality:.2%}"
            ax.annotate(name, (latency, quality), xytext=(6, 5), textcoords="offset points", fontsize=8)
        ax.margins(x=0.12, y=0.1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("median latency (ms, measured)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        return svg_text(fig, tips)


def trend_svg(points: Sequence[TrendPoint]) -> Optional[str]:
    """Dashboard: the median of each run with its 95% interval, runs in order; None when no run has a median."""
    values = [(i + 1, m, lo, hi) for i, (_, m, lo, hi) in enumerate(points) if m is not None]
    if not values:
        return None
    tips: dict[str, str] = {}
    with _figure(420, 160) as fig:
        ax = fig.add_subplot()
        for i, m, lo, hi in values:
            if lo is not None and hi is not None and np.isfinite(lo) and lo <= hi:  # rows without a CI: no bar
                ax.vlines(i, lo, hi, color="#9bd", linewidth=2)
        ax.plot([v[0] for v in values], [v[1] for v in values], color="#26a", linewidth=1.5)
        for i, m, _, _ in values:
            ax.scatter([i], [m], s=10, color="#26a", zorder=3).set_gid(f"run-{i}")
            tips[f"run-{i}"] = f"{points[i - 1][0]}: {m:.4g} ms"
        ax.set_xlabel("run (oldest first)", fontsize=8)
        ax.set_ylabel("median ms", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
        return svg_text(fig, tips)


def histogram_svg(samples: Sequence[float]) -> Optional[str]:
    """Dashboard: the latest run's samples up to their 99th percentile (the far tail would squash the bars)."""
    if not len(samples):
        return None
    values = np.asarray(samples, dtype=float)
    with _figure(260, 110) as fig:
        ax = fig.add_subplot()
        ax.hist(values[values <= np.percentile(values, 99)], bins=24, color="#7a9")
        ax.set_xlabel("ms (p99 cut)", fontsize=8)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.tick_params(labelsize=7)
        return svg_text(fig)


def layer_bars_svg(labels: Sequence[str], latencies_ms: Sequence[float], shares: Sequence[float], unit: str) -> str:
    """Per-layer profile: one horizontal bar per layer, slowest on top; each bar's group has id ``layer-bar-<rank>``."""
    tips: dict[str, str] = {}
    with _figure(810, 18 * len(labels) + 60) as fig:
        ax = fig.add_subplot()
        rows = np.arange(len(labels))
        bars = ax.barh(rows, latencies_ms, height=0.75, color="#4a7bd0")
        for rank, (bar, label, ms, share) in enumerate(zip(bars, labels, latencies_ms, shares)):
            bar.set_gid(f"layer-bar-{rank}")
            tips[f"layer-bar-{rank}"] = f"{label}: {ms:.4g} ms, {share:.1%} of the layers"
            ax.annotate(f"{ms:.4g} ({share:.0%})", (ms, rank), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=8)
        ax.set_yticks(rows, [label if len(label) <= 48 else label[:45] + "..." for label in labels], fontsize=8)
        ax.invert_yaxis()
        ax.margins(x=0.15)
        ax.set_title(f"time per layer ({unit})", fontsize=9, loc="left")
        return svg_text(fig, tips)


def search_front_svg(trials: Sequence[tuple[int, float, float, bool]], measured: Sequence[tuple[int, float, float]],
                     budget_ms: Optional[float]) -> str:
    """Search: accuracy against latency of each finished trial, (number, predicted ms, accuracy, on the front),
    front red, and of the top-k measured on the target, (number, measured ms, accuracy), as x."""
    tips: dict[str, str] = {}
    legend: set[str] = set()

    def once(label: str) -> str:  # one legend entry per kind of mark
        if label in legend:
            return "_nolegend_"
        legend.add(label)
        return label

    with _figure(520, 360) as fig:
        ax = fig.add_subplot()
        for number, ms, accuracy, on_front in trials:
            label, color = ("front (predicted)", WINNER) if on_front else ("trial (predicted)", TRIAL)
            dot = ax.scatter([ms], [accuracy], s=22, facecolors="none", edgecolors=color, label=once(label))
            dot.set_gid(f"trial-{number}")
            tips[f"trial-{number}"] = f"trial {number}: {accuracy:.3f}, predicted {ms:.3g} ms"
        for number, ms, accuracy in measured:
            cross = ax.scatter([ms], [accuracy], marker="x", color="black", label=once("measured on target"))
            cross.set_gid(f"measured-{number}")
            tips[f"measured-{number}"] = f"trial {number}: measured {ms:.3g} ms"
        if budget_ms:
            ax.axvline(budget_ms, color="red", linestyle="--", linewidth=1, label=f"budget {budget_ms:g} ms")
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("validation top-1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        return svg_text(fig, tips)
