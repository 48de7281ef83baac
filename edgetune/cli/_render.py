"""Rich tables for people; JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Optional, Sequence

from rich.console import Console
from rich.table import Table

from edgetune.bench import LatencyStats
from edgetune.pipeline import CandidateResult, measurement_modes
from edgetune.simulate._figures import device_figures
from edgetune.targets import Target

out = Console(highlight=False, soft_wrap=False)
if not out.is_terminal:  # pipes and CI logs: wide enough that tables do not fold every cell
    out = Console(highlight=False, soft_wrap=False, width=200)
err = Console(stderr=True, highlight=False)

_STATUS_STYLE = {"ok": "green", "rejected": "yellow", "failed": "red", "skipped": "dim", "interrupted": "yellow",
                 "built": "cyan"}


def styled(text: str, style: str) -> str:
    """Rich markup for ``text`` in ``style`` (plain text when there is no style)."""
    from rich.markup import escape

    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


LATENCY_COLUMNS = ("median ms", "min ms", "mean ms", "max ms", "p90 ms", "p99 ms", "IQR/med", "95% CI ms", "n",
                   "inf/s")


def latency_cells(stats: Optional[LatencyStats], batch: int = 1) -> list[str]:
    """benchmark_app's figures for one candidate (min/median/mean/max, p90/p99, throughput), with the robust
    spread (IQR / median) instead of the CV, which one slow run of a 20-us model blows up."""
    if stats is None:
        return ["-"] * len(LATENCY_COLUMNS)
    return [f"{stats.median_ms:.4f}", f"{stats.min_ms:.4f}", f"{stats.mean_ms:.4f}",
            f"{stats.max_ms:.4f}" if stats.max_ms else "-", f"{stats.p90_ms:.4f}", f"{stats.p99_ms:.4f}",
            f"{stats.iqr_rel:.1%}", f"{stats.ci_low_ms:.4f}-{stats.ci_high_ms:.4f}", str(stats.n),
            f"{stats.throughput_per_s(batch):,.1f}"]


def _figures(results: Sequence[CandidateResult], target: Target | None) -> dict[str, Any]:
    memory = target.memory.model_dump() if target is not None else None
    return {r.name: device_figures(r.details, memory) for r in results}


def candidates_table(results: Sequence[CandidateResult], title: str, winner: str | None = None, batch: int = 1,
                     shape: str | None = None, fixed_count: bool = False, target: Target | None = None) -> Table:
    """One row per candidate; ``shape`` adds a shape column (a sweep), ``batch`` scales the throughput; a "device"
    column holds the simulated/estimated figures of ``target`` where there are any."""
    modes = measurement_modes(results)
    table = Table(title=title, title_justify="left", caption=f"measured: {modes}" if modes else None,
                  caption_justify="left")
    lead = [("shape", "left")] if shape is not None else []
    columns = [*lead, ("candidate", "left"), ("status", "left"), *((c, "right") for c in LATENCY_COLUMNS),
               ("RSS +MB", "right"), ("size KB", "right"), ("load ms", "right"), ("accuracy", "right"),
               ("note", "left")]
    if any(_figures(results, target).values()):
        columns.append(("device", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    add_candidate_rows(table, results, winner, batch, shape, fixed_count, target)
    return table


def add_candidate_rows(table: Table, results: Sequence[CandidateResult], winner: str | None = None, batch: int = 1,
                       shape: str | None = None, fixed_count: bool = False, target: Target | None = None) -> None:
    """Rows of ``candidates_table`` (a sweep adds every shape's rows to one table)."""
    figures = _figures(results, target)
    with_figures = bool(table.columns) and str(table.columns[-1].header) == "device"
    for r in results:
        s = r.timing.stats if r.timing else None
        name = f"* {r.name}" if r.name == winner else r.name
        table.add_row(
            *([shape] if shape is not None else []),
            name,
            styled(r.status, _STATUS_STYLE.get(r.status, "")),
            *latency_cells(s, batch),
            f"{r.rss_delta_mb:.1f}" if r.rss_delta_mb is not None else "-",
            f"{r.artifact.size_bytes / 1024:.1f}" if r.artifact else "-",
            f"{r.load_ms:.1f}" if r.load_ms is not None else "-",
            _accuracy_cell(r),
            r.reason if r.status != "ok" else _timing_note(r, fixed_count),
            *([figures[r.name].text if figures[r.name] else "-"] if with_figures else []),
        )


def _accuracy_cell(result: CandidateResult) -> str:
    acc = result.accuracy
    if not acc:
        return f"err {result.fidelity.max_abs_err:.1e}" if result.fidelity else "-"
    label = "top1" if acc["metric"] == "top1_accuracy" else "agree"
    return f"{label} {acc['value']:.1%} ({-acc['drop_points']:+.1f})"


def _timing_note(result: CandidateResult, fixed_count: bool = False) -> str:
    timing = result.timing
    if timing is None:
        return ""
    notes = [timing.stopped_early] if timing.stopped_early else []
    if timing.runs_per_sample > 1:
        notes.append(f"{timing.runs_per_sample} runs/sample")
    if not timing.converged and not fixed_count and not timing.stopped_early:
        notes.append(f"CI +-{timing.stats.ci_rel:.1%}: budget ran out before +-1%")
    return "; ".join(notes)


class progress_reporter:
    """A rich status line on stderr fed by the library's progress callback (silent with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._status: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if self.quiet or not err.is_terminal:
            return (lambda msg: None) if self.quiet else (lambda msg: err.print(f"[dim]{msg}[/]"))
        self._status = err.status("starting")
        self._status.__enter__()
        return lambda msg: self._status.update(msg)

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
