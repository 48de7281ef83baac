"""`edgetune targets list|show`: the device registry."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
from rich.table import Table

from edgetune.cli import _options
from edgetune.cli._render import out, print_json
from edgetune.runners import runnability
from edgetune.targets import list_targets, load_target


@click.group("targets")
def command() -> None:
    """List and show target devices."""


@command.command("list")
@_options.targets_dir
@_options.json_output
def list_cmd(targets_dir: Optional[Path], as_json: bool) -> None:
    """Table of targets: name, kind, transport, and whether it runs here (and why not)."""
    rows = []
    for target in list_targets(targets_dir):
        verdict = runnability(target)
        rows.append((target, verdict))
    if as_json:
        print_json([
            {"name": t.name, "kind": t.kind, "transport": t.transport, "simulated": t.simulated,
             "runnable": v.runnable, "reason": v.reason, "source": t.source}
            for t, v in rows
        ])
        return
    table = Table(title="edgetune targets")
    for column in ("name", "kind", "transport", "runnable here", "why", "description"):
        table.add_column(column, overflow="fold")
    for t, v in rows:
        table.add_row(
            t.name, t.kind, f"{t.transport}{' (simulated)' if t.simulated else ''}",
            "[green]yes[/]" if v.runnable else "[red]no[/]", v.reason, t.description,
        )
    out.print(table)


@command.command("show")
@click.argument("name")
@_options.targets_dir
@_options.json_output
def show_cmd(name: str, targets_dir: Optional[Path], as_json: bool) -> None:
    """Everything a target file says (with 'auto' fields detected on this host)."""
    target = load_target(name, targets_dir)
    verdict = runnability(target)
    data = {**target.model_dump(mode="json"), "source": target.source, "runnable": verdict.runnable, "reason": verdict.reason}
    if as_json:
        print_json(data)
        return
    table = Table(title=f"target {name}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                if subvalue is not None:
                    table.add_row(f"{key}.{sub}", _fmt(subvalue))
        elif value is not None:
            table.add_row(key, _fmt(value))
    out.print(table)


def _fmt(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
