"""`edgetune zoo list|export`: built-in reference networks defined in code."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from edgetune.cli._render import out, print_json
from edgetune.models import ZOO, export_zoo_model


@click.group("zoo")
def command() -> None:
    """Built-in networks (no downloads)."""


@command.command("list")
def list_cmd() -> None:
    """Names and default input shapes."""
    for name, (_, shape) in sorted(ZOO.items()):
        out.print(f"{name:<22} input {'x'.join(map(str, shape))}")


@command.command("export")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="File to write (.pt2 or .onnx).")
@click.option("--train-seconds", type=float, default=0.0, show_default=True,
              help="Train on the built-in digits data for this long first (digits-cnn only).")
@click.option("--train-epochs", type=int, default=None, help="Stop training after this many epochs (reproducible).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def export_cmd(name: str, output: Path, train_seconds: float, train_epochs: Optional[int], seed: int, as_json: bool) -> None:
    """Build NAME, optionally train it, and save it to OUTPUT."""
    info = export_zoo_model(name, output, train_seconds=train_seconds, seed=seed, train_epochs=train_epochs)
    if as_json:
        print_json(info)
        return
    accuracy = f", validation accuracy {info['val_accuracy']:.1%}" if info["val_accuracy"] is not None else ""
    out.print(f"wrote {info['path']} ({name}, input {'x'.join(map(str, info['input_shape']))}{accuracy})")
