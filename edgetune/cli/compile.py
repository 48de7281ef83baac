"""`edgetune compile MODEL --target T -o OUT`: build every candidate, measure, keep the fastest that matches."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from edgetune.bench import BenchConfig
from edgetune.cli import _options
from edgetune.cli._render import candidates_table, out, print_json, progress_reporter
from edgetune.models import parse_shape_option
from edgetune.pipeline import Tolerance, compile_model
from edgetune.pipeline._output import manifest_dict


@click.command("compile")
@click.argument("model")
@_options.target
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("edgetune-out"), show_default=True,
              help="Output folder (artifact, manifest.json, summary.txt, candidates/).")
@_options.runtime
@_options.threads
@_options.input_shape
@_options.budget(5.0)
@click.option("--rtol", type=float, default=1e-3, show_default=True, help="Relative tolerance against the fp32 reference.")
@_options.results
@_options.targets_dir
@_options.json_output
def command(model: str, target: str, output: Path, runtimes: tuple[str, ...], threads: Optional[int],
            input_shape: tuple[str, ...], budget_s: float, rtol: float, results: Optional[Path],
            targets_dir: Optional[Path], as_json: bool) -> None:
    """Compile MODEL for a target with every runtime, measure each, keep the fastest that matches fp32."""
    config = BenchConfig(budget_s=budget_s)
    tolerance = Tolerance(rtol=rtol)
    with progress_reporter(as_json) as progress:
        result = compile_model(
            model, target, output, runtimes=runtimes or None, threads=threads,
            input_shape=parse_shape_option(input_shape), config=config, tolerance=tolerance,
            results_path=results, targets_dir=targets_dir, progress=progress,
        )
    evaluation = result.evaluation
    if as_json:
        print_json(manifest_dict(evaluation, result.winner, result.reason, result.artifact, config, tolerance))
        return
    title = (f"{evaluation.model.name} on {evaluation.target.name}"
             f"{' (SIMULATED)' if evaluation.target.simulated else ''}: {evaluation.threads} thread(s), measured")
    out.print(candidates_table(evaluation.results, title, result.winner.name if result.winner else None))
    out.print(f"winner: [bold]{result.winner.name}[/]  ({result.reason})" if result.winner else "winner: none")
    out.print(f"artifact: {result.artifact}")
    out.print(f"manifest: {result.manifest_path}")
    out.print(f"results:  {evaluation.results_path} (run {evaluation.run_id})")
