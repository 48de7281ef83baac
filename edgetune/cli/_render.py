"""Rich tables for people; JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.table import Table

from edgetune.pipeline import CandidateResult
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


def candidates_table(results: Sequence[CandidateResult], title: str, winner: str | None = None,
                     target: Target | None = None) -> Table:
    """One row per candidate; a "device" column with the simulated/estimated figures where there are any."""
    memory = target.memory.model_dump() if target is not None else None
    figures = {r.name: device_figures(r.details, memory) for r in results}
    table = Table(title=title, title_justify="left")
    for column, justify in [
        ("candidate", "left"), ("status", "left"), ("median ms", "right"), ("p90 ms", "right"),
        ("cv", "right"), ("IQR/med", "right"), ("95% CI ms", "right"), ("n", "right"), ("RSS +MB", "right"),
        ("size KB", "right"), ("load ms", "right"), ("accuracy", "right"), ("note", "left"),
    ]:
        table.add_column(column, justify=justify, overflow="fold")
    with_figures = any(figures.values())
    if with_figures:
        table.add_column("device", justify="left", overflow="fold")
    for r in results:
        s = r.timing.stats if r.timing else None
        name = f"* {r.name}" if r.name == winner else r.name
        table.add_row(
            name,
            styled(r.status, _STATUS_STYLE.get(r.status, "")),
            f"{s.median_ms:.4f}" if s else "-",
            f"{s.p90_ms:.4f}" if s else "-",
            f"{s.cv:.1%}" if s else "-",
            f"{s.iqr_rel:.1%}" if s else "-",
            f"{s.ci_low_ms:.4f}-{s.ci_high_ms:.4f}" if s else "-",
            str(s.n) if s else "-",
            f"{r.rss_delta_mb:.1f}" if r.rss_delta_mb is not None else "-",
            f"{r.artifact.size_bytes / 1024:.1f}" if r.artifact else "-",
            f"{r.load_ms:.1f}" if r.load_ms is not None else "-",
            _accuracy_cell(r),
            r.reason if r.status != "ok" else _timing_note(r),
            *([figures[r.name].text if figures[r.name] else "-"] if with_figures else []),
        )
    return table


def _accuracy_cell(result: CandidateResult) -> str:
    acc = result.accuracy
    if not acc:
        return f"err {result.fidelity.max_abs_err:.1e}" if result.fidelity else "-"
    label = "top1" if acc["metric"] == "top1_accuracy" else "agree"
    return f"{label} {acc['value']:.1%} ({-acc['drop_points']:+.1f})"


def _timing_note(result: CandidateResult) -> str:
    timing = result.timing
    if timing is None:
        return ""
    notes = []
    if timing.runs_per_sample > 1:
        notes.append(f"{timing.runs_per_sample} runs/sample")
    if not timing.converged:
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
