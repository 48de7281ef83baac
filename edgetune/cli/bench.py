"""`edgetune bench MODEL --target T [--runtime R]`: measure and store, no selection."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from edgetune.bench import BenchConfig
from edgetune.cli import _options
from edgetune.cli._render import candidates_table, out, print_json, progress_reporter
from edgetune.models import parse_shape_option
from edgetune.pipeline import CompileOptions, benchmark


@click.command("bench")
@click.argument("model")
@_options.target
@_options.runtime
@_options.threads
@_options.input_shape
@_options.budget(10.0)
@click.option("--precision", "precisions", multiple=True, type=click.Choice(["fp32", "fp16", "int8"]),
              help="Precisions to build and measure (repeatable) [fp32: the model as given].")
@click.option("--calib", default=None, help="Calibration data for int8 (.npz, image folder, digits).")
@click.option("--min-repeats", type=int, default=30, show_default=True, help="Timed runs before the CI rule may stop.")
@_options.results
@_options.targets_dir
@_options.json_output
def command(model: str, target: str, runtimes: tuple[str, ...], threads: Optional[int], input_shape: tuple[str, ...],
            budget_s: float, precisions: tuple[str, ...], calib: Optional[str], min_repeats: int, results: Optional[str], targets_dir: Optional[Path], as_json: bool) -> None:
    """Benchmark MODEL on a target (each runtime, or those given) and store every measurement."""
    config = BenchConfig(budget_s=budget_s, min_repeats=min_repeats, max_repeats=max(20000, min_repeats))
    with progress_reporter(as_json) as progress:
        evaluation = benchmark(
            model, target, runtimes=runtimes or None, threads=threads, input_shape=parse_shape_option(input_shape),
            config=config, results_path=results, targets_dir=targets_dir, progress=progress,
            precisions=precisions or ("fp32",), options=CompileOptions(calib=calib),
        )
    if as_json:
        print_json({
            "run_id": evaluation.run_id,
            "target": evaluation.target.name,
            "simulated": evaluation.target.simulated,
            "model": {"name": evaluation.model.name, "sha256": evaluation.model.sha256},
            "threads": evaluation.threads,
            "environment": evaluation.environment,
            "results_store": str(evaluation.results_path),
            "candidates": [r.to_dict() for r in evaluation.results],
        })
    else:
        title = f"{evaluation.model.name} on {evaluation.target.name}: {evaluation.threads} thread(s), measured"
        out.print(candidates_table(evaluation.results, title))
        out.print(f"results: {evaluation.results_path} (run {evaluation.run_id})")
    if not any(r.status == "ok" for r in evaluation.results):
        raise SystemExit(1)
