"""`edgetune compile MODEL --target T -o OUT`: build every candidate, measure, keep the fastest that matches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from edgetune.bench import BenchConfig
from edgetune.cli import _options
from edgetune.cli._layers import print_layers
from edgetune.cli._render import candidates_table, out, print_json, progress_reporter
from edgetune.models import parse_shape_option
from edgetune.pipeline import PRESETS, CompileResult, NoViableCandidateError, Tolerance, compile_model, options_from
from edgetune.pipeline._emit_c import EMIT_FORMATS
from edgetune.pipeline._options import CALIBRATION_METHODS, OBJECTIVES, QAT_MODES
from edgetune.targets import resolve_target_option


@click.command("compile")
@click.argument("model")
@_options.target
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("edgetune-out"), show_default=True,
              help="Output folder (artifact, manifest.json, summary.txt, candidates/).")
@_options.runtime
@_options.threads
@_options.input_shape
@click.option("--budget-s", type=float, default=None,
              help="Timing budget per candidate in seconds (default from the preset: 5; stops earlier at +-1% CI).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="fast: one calibration method, short timing; thorough: all calibration methods, TVM tuning, pruning.")
@click.option("--objective", type=click.Choice(OBJECTIVES), default=None, help="What the winner minimizes [latency].")
@click.option("--calib", default=None, help="Calibration data: .npz (array x), image folder, or built-in name (digits).")
@click.option("--eval", "eval_data", default=None, help="Labelled eval data (.npz x,y / class folders / digits): top-1 per candidate.")
@click.option("--train", "train_data", default=None, help="Labelled training data for fine-tuning pruned models (distillation).")
@click.option("--max-accuracy-drop", type=float, default=None, help="Allowed top-1 drop vs fp32, percentage points [1.0].")
@click.option("--calib-method", "calib_methods", multiple=True, type=click.Choice(CALIBRATION_METHODS),
              help="ONNX Runtime static int8 calibration (repeatable) [minmax].")
@click.option("--prune", "prune_ratios", multiple=True, type=float, help="Structured pruning ratio to try, e.g. 0.5 (repeatable).")
@click.option("--prune-to-latency-ms", type=float, default=None,
              help="Search the prune ratio (0-0.9, measured on the target) until the fp32 model meets this latency.")
@click.option("--qat", type=click.Choice(QAT_MODES), default=None,
              help="Quantization-aware training with --train: auto = only where post-training int8 misses "
                   "--max-accuracy-drop [auto].")
@click.option("--train-epochs", type=int, default=None, help="Fine-tuning epochs after pruning [3].")
@click.option("--tune-trials", type=int, default=None,
              help="TVM MetaSchedule trials, measured on the target (its boards for an RPC target) (0 = no tuned candidate) [0].")
@click.option("--tuning-records", type=click.Path(path_type=Path), default=None,
              help="Folder holding TVM tuning records (MetaSchedule JSON database): read, and new records written there "
                   "[profiles/<target>/tvm/].")
@click.option("--sessions", type=int, default=None,
              help="Fresh loads of every candidate, timed and pooled (3 with --preset thorough) [1].")
@click.option("--rtol", type=float, default=1e-3, show_default=True, help="Relative tolerance against the fp32 reference.")
@click.option("--build-only", is_flag=True,
              help="Build every candidate into OUT/artifacts/ without reaching the target (no tracker or board needed); "
                   "nothing is measured: measure later with `edgetune bench`.")
@click.option("--emit", type=click.Choice(EMIT_FORMATS), default=None,
              help="c: also write model_data.h/.cc (byte array, kTensorArenaSize) for MCU and Ethos-U targets.")
@_options.results
@_options.targets_dir
@_options.rpc_tracker
@_options.rpc_key
@click.option("--per-layer", is_flag=True, help="Profile the winner's layers (OUT/per-layer/, and a chart in report.html).")
@click.option("--top", type=int, default=10, show_default=True, help="With --per-layer: layers listed.")
@_options.json_output
def command(model: str, target: str, output: Path, runtimes: tuple[str, ...], threads: Optional[int],
            input_shape: tuple[str, ...], budget_s: Optional[float], preset: Optional[str], objective: Optional[str],
            calib: Optional[str], eval_data: Optional[str], train_data: Optional[str],
            max_accuracy_drop: Optional[float], calib_methods: tuple[str, ...], prune_ratios: tuple[float, ...],
            prune_to_latency_ms: Optional[float], qat: Optional[str], train_epochs: Optional[int],
            tune_trials: Optional[int], tuning_records: Optional[Path], sessions: Optional[int], rtol: float,
            results: Optional[str], targets_dir: Optional[Path], rpc_tracker: Optional[str], rpc_key: Optional[str],
            build_only: bool, emit: Optional[str], per_layer: bool, top: int, as_json: bool) -> None:
    """Compile MODEL for a target: every runtime x precision (x pruning level), each measured on the
    device and judged against fp32; keeps the best one within the accuracy budget."""
    options = options_from(
        preset, budget_s=budget_s, objective=objective, calib=calib, eval=eval_data, train=train_data,
        max_accuracy_drop=max_accuracy_drop, calib_methods=calib_methods or None, prune_ratios=prune_ratios or None,
        prune_to_latency_ms=prune_to_latency_ms, qat=qat, train_epochs=train_epochs, tune_trials=tune_trials,
        sessions=sessions, tuning_records=str(tuning_records) if tuning_records is not None else None,
    )
    _options.check_per_layer(per_layer, top, None)
    config = BenchConfig(budget_s=options.budget_s)
    tolerance = Tolerance(rtol=rtol)
    try:
        with progress_reporter(as_json) as progress:
            result = compile_model(
                model, resolve_target_option(target, targets_dir, rpc_key), output, runtimes=runtimes or None,
                threads=threads, input_shape=parse_shape_option(input_shape), config=config, tolerance=tolerance,
                results_path=results, targets_dir=targets_dir, progress=progress, options=options,
                rpc_tracker=rpc_tracker, build_only=build_only, emit=emit, per_layer=per_layer,
            )
    except NoViableCandidateError as exc:  # the reasons are shown (or printed as JSON), then the error line
        if exc.result is not None:
            _show(exc.result, as_json, top)
        raise
    _show(result, as_json, top)


def _show(result: CompileResult, as_json: bool, top: int) -> None:
    """The manifest as JSON, or the candidate table and where everything was written."""
    if as_json:
        print_json(json.loads(result.manifest_path.read_text()))
        return
    evaluation = result.evaluation
    title = (f"{evaluation.model.name} on {evaluation.target.name}"
             f"{' (SIMULATED)' if evaluation.target.simulated else ''}: {evaluation.threads} thread(s), "
             f"{'measured' if result.measured else 'built only, not measured'}")
    out.print(candidates_table(evaluation.results, title, result.winner.name if result.winner else None,
                               target=evaluation.target))
    if result.measured:
        out.print(f"winner: [bold]{result.winner.name}[/]  ({result.reason})" if result.winner else "winner: none")
        out.print(f"artifact: {result.artifact}")
    else:
        for name, path in result.built_artifacts.items():
            out.print(f"built: {name:<34} {result.output_dir / path}")
    if result.emitted and result.emitted.get("written"):
        emitted = result.emitted
        out.print(f"C sources: {result.output_dir / emitted['header']}, {result.output_dir / emitted['source']} "
                  f"({emitted['candidate']}; kTensorArenaSize {emitted['tensor_arena_size']} bytes)")
    out.print(f"manifest: {result.manifest_path}")
    out.print(f"report:   {result.output_dir / 'report.html'}")
    search = evaluation.prune_search
    if search:
        out.print(f"prune search: {len(search['steps'])} step(s) on {search['measured_with']} for "
                  f"{search['goal_ms']:g} ms; {search['note']}")
    winner_layers = result.winner.layers if result.winner else None
    if winner_layers is not None:
        print_layers(out, [winner_layers], top)
        out.print(f"per-layer: {result.output_dir / 'per-layer'}/layers.json, layers.csv, layers.html")
    for warning in evaluation.warnings:
        out.print(f"[yellow]warning:[/] {warning}")
    if evaluation.results_path:
        out.print(f"results:  {evaluation.results_path} (run {evaluation.run_id})")
