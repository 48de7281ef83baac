"""`edgetune inspect MODEL`: operators, parameters, MACs, input/output shapes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from rich.table import Table

from edgetune.cli import _options
from edgetune.cli._render import out, print_json
from edgetune.models import load_model, parse_shape_option, summarize


@click.command("inspect")
@click.argument("model")
@_options.input_shape
@_options.json_output
def command(model: str, input_shape: tuple[str, ...], as_json: bool) -> None:
    """Summarize MODEL (.onnx, .tflite, .pt2, TorchScript, or pkg.module:factory)."""
    with tempfile.TemporaryDirectory(prefix="edgetune-inspect-") as tmp:
        summary = summarize(load_model(model, parse_shape_option(input_shape), Path(tmp)))
    if as_json:
        print_json(summary.to_dict())
        return
    table = Table(title=f"model {summary.name} ({summary.source_format})", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for spec in summary.inputs:
        table.add_row(f"input {spec.name}", f"{'x'.join(map(str, spec.shape))} {spec.dtype}")
    for spec in summary.outputs:
        table.add_row(f"output {spec.name}", f"{'x'.join(str(d) if d >= 0 else '?' for d in spec.shape)} {spec.dtype}")
    table.add_row("parameters", f"{summary.params:,}")
    table.add_row("MACs", f"{summary.macs:,}" if summary.macs else "n/a")
    table.add_row("file size", f"{summary.size_bytes / 1024:.1f} KB")
    table.add_row("operators", ", ".join(f"{op} x{n}" for op, n in summary.op_counts.items()))
    table.add_row("sha256", summary.sha256)
    out.print(table)
