"""Per-layer tables for people (`bench --per-layer`, `compile --per-layer`)."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.table import Table

from edgetune.bench._layers import LayerProfile


def layers_table(profile: LayerProfile, top: int) -> Table:
    """The ``top`` slowest layers of one candidate, with their share of the layers and of the end-to-end median."""
    label = " (SIMULATED)" if profile.simulated else ""
    table = Table(title=f"{profile.candidate}{label}: slowest {min(top, len(profile.layers))} of "
                        f"{len(profile.layers)} layers ({profile.source})", title_justify="left")
    for column, justify in (("#", "right"), ("layer", "left"), ("op", "left"), ("ms", "right"), ("min ms", "right"),
                            ("of layers", "right"), ("of end-to-end", "right")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for rank, layer in enumerate(profile.top(top), start=1):
        of_end = f"{layer.latency_ms / profile.end_to_end_ms:.1%}" if profile.end_to_end_ms else "-"
        table.add_row(str(rank), layer.name, layer.op_type, f"{layer.latency_ms:.4f}", f"{layer.min_ms:.4f}",
                      f"{profile.share(layer):.1%}", of_end)
    return table


def print_layers(console: Console, profiles: Sequence[LayerProfile], top: int) -> None:
    """Print each profile's table (or why it has none) and the share of the end-to-end time its layers cover."""
    for profile in profiles:
        if profile.layers:
            console.print(layers_table(profile, top))
        console.print(profile.coverage_line())
