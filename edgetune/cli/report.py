"""`edgetune report -o results.html`: the results store as a self-contained HTML dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from edgetune.bench import ResultsStore
from edgetune.cli import _options
from edgetune.cli._render import out
from edgetune.report import write_dashboard


@click.command("report")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("edgetune-report.html"), show_default=True)
@click.option("--target", "-t", default=None, help="Only this target.")
@_options.results
def command(output: Path, target: Optional[str], results: Optional[str]) -> None:
    """Per device and model: latency trends over runs, distributions, and the latest comparison."""
    with ResultsStore(results) as store:
        rows = store.rows(target=target)
        label = store.location
    write_dashboard(rows, output, label, target)
    out.print(f"wrote {output}")
