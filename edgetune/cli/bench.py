"""`edgetune bench`: measure a model or a suite and store it; compare runs (the CI gate); export baselines.

    edgetune bench MODEL --target T [--runtime R]        (same as `edgetune bench run MODEL ...`)
    edgetune bench --suite benchmarks/suites/host-cpu.yaml
    edgetune bench --suite benchmarks/suites/rpi4.yaml --rpc-tracker HOST:PORT   (boards behind a TVM RPC tracker)
    edgetune bench compare --baseline RUN|FILE --candidate RUN [--junit F] [--json]
    edgetune bench export RUN -o benchmarks/baselines/host-cpu.json
    edgetune bench runs
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click
from rich.table import Table

from edgetune.bench import (
    RETIME_MODES,
    BenchConfig,
    ResultsStore,
    export_baseline,
    gate,
    junit_xml,
    kept_root,
    load_side,
    load_suite,
)
from edgetune.bench._fixed_count import fixed_count
from edgetune.cli import _options
from edgetune.cli._layers import print_layers
from edgetune.cli._render import add_candidate_rows, candidates_table, out, print_json, progress_reporter, styled
from edgetune.errors import EXIT_ERROR, EXIT_REGRESSION, ConfigError
from edgetune.pipeline import CompileOptions, run_suite
from edgetune.pipeline._output import candidate_dicts
from edgetune.pipeline._sweep import SweepResult, benchmark_sweep, sweep_points
from edgetune.report._layers import write_layers_report
from edgetune.targets import resolve_target_option


class _DefaultToRun(click.Group):
    """`edgetune bench MODEL` and `edgetune bench --suite F` mean `edgetune bench run ...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("bench", cls=_DefaultToRun)
def command() -> None:
    """Measure and store (a model or a suite), compare runs, export baselines."""


@command.command("run")
@click.argument("model", required=False)
@click.option("--suite", type=click.Path(path_type=Path), default=None, help="A suite YAML (benchmarks/suites/<target>.yaml).")
@click.option("--target", "-t", default=None,
              help="Target: a name, a target YAML file, or an LLVM target string [host-cpu, or the suite's target].")
@_options.runtime
@_options.threads
@click.option("--input-shape", multiple=True,
              help="Input shape, e.g. 1x3x224x224; repeat it for a sweep (one row per shape). Multi-input models: "
                   "NAME:SHAPE per input, or NAME:SHAPE;NAME:SHAPE per sweep point.")
@click.option("--batch-size", "-b", type=int, default=None,
              help="Batch: the leading dimension of every input (throughput = batch x 1000 / median).")
@_options.budget(10.0)
@click.option("--iterations", "-n", type=int, default=None,
              help="Fixed-count mode: exactly N timed samples per candidate (no CI stop, no time budget).")
@click.option("--sessions", type=int, default=1, show_default=True, help="Fresh loads of each artifact (one row each).")
@click.option("--precision", "precisions", multiple=True, type=click.Choice(["fp32", "fp16", "int8"]),
              help="Precisions to build and measure (repeatable) [fp32, the model as given; int8 on int8-only devices].")
@click.option("--calib", default=None, help="Calibration data for int8 (.npz, image folder, digits).")
@click.option("--min-repeats", type=int, default=30, show_default=True, help="Timed runs before the CI rule may stop.")
@_options.per_layer
@_options.results
@_options.targets_dir
@_options.rpc_tracker
@_options.rpc_key
@_options.json_output
def run_cmd(model: Optional[str], suite: Optional[Path], target: Optional[str], runtimes: tuple[str, ...],
            threads: Optional[int], input_shape: tuple[str, ...], batch_size: Optional[int], budget_s: float,
            iterations: Optional[int], sessions: int, precisions: tuple[str, ...], calib: Optional[str],
            min_repeats: int, per_layer: bool, top: int, per_layer_out: Optional[Path], results: Optional[str],
            targets_dir: Optional[Path], rpc_tracker: Optional[str], rpc_key: Optional[str], as_json: bool) -> None:
    """Benchmark MODEL (each runtime, or those given) or every entry of --suite, and store every measurement."""
    if (model is None) == (suite is None):
        raise ConfigError("give a MODEL or --suite FILE (one of them)")
    if suite is not None:
        _run_suite(suite, target, results, targets_dir, as_json, rpc_tracker)
        return
    _options.check_per_layer(per_layer, top, per_layer_out)
    config = BenchConfig(budget_s=budget_s, min_repeats=min_repeats, max_repeats=max(20000, min_repeats))
    if iterations is not None:
        config = fixed_count(iterations, config)
    points = sweep_points(input_shape, batch_size, model)
    with progress_reporter(as_json) as progress:
        sweep = benchmark_sweep(
            model, points, target=resolve_target_option(target or "host-cpu", targets_dir, rpc_key),
            runtimes=runtimes or None, threads=threads, config=config, results_path=results,
            targets_dir=targets_dir, progress=progress, precisions=precisions or None,
            options=CompileOptions(calib=calib), sessions=sessions, rpc_tracker=rpc_tracker, per_layer=per_layer,
        )
    profiles = [r.layers for s in sweep for r in s.evaluation.results if r.layers is not None]
    if per_layer_out is not None and profiles:
        write_layers_report(profiles, per_layer_out, top, title=f"{sweep[0].evaluation.model.name}: per layer")
    if as_json:
        print_json(_sweep_json(sweep))
    else:
        _print_sweep(sweep, iterations is not None)
        print_layers(out, profiles, top)
        if per_layer_out is not None and profiles:
            out.print(f"per-layer files: {per_layer_out}/layers.json, layers.csv, layers.html")
    if not any(r.status == "ok" for s in sweep for r in s.evaluation.results):
        raise SystemExit(EXIT_ERROR)


def _print_sweep(sweep: list[SweepResult], fixed: bool) -> None:
    first = sweep[0].evaluation
    kind = "measured" + (f", {first.target.name} SIMULATED" if first.target.simulated else "")
    if len(sweep) == 1:
        title = f"{first.model.name} on {first.target.name}: {first.threads} thread(s), batch {sweep[0].point.batch}, {kind}"
        out.print(candidates_table(first.results, title, batch=sweep[0].point.batch, fixed_count=fixed,
                                   target=first.target))
    else:
        title = f"{first.model.name} on {first.target.name}: {first.threads} thread(s), {len(sweep)} shapes, {kind}"
        table = candidates_table(first.results[:0], title, shape="", fixed_count=fixed, target=first.target)
        for point in sweep:
            add_candidate_rows(table, point.evaluation.results, batch=point.point.batch, shape=point.point.label,
                               fixed_count=fixed, target=first.target)
        out.print(table)
    out.print(f"results: {first.results_path} (run {first.run_id})")
    for warning in dict.fromkeys(s.evaluation.noise.get("warning") for s in sweep if s.evaluation.noise.get("warning")):
        out.print(f"[yellow]noise:[/] {warning}")


def _sweep_json(sweep: list[SweepResult]) -> dict[str, Any]:
    if len(sweep) == 1:
        return _evaluation_json(sweep[0].evaluation, sweep[0].point.batch)
    return {"run_id": sweep[0].evaluation.run_id,
            "shapes": [{"shape": s.point.label, **_evaluation_json(s.evaluation, s.point.batch)} for s in sweep]}


def _evaluation_json(evaluation: Any, batch: int = 1) -> dict[str, Any]:
    return {
        "run_id": evaluation.run_id,
        "target": evaluation.target.name,
        "simulated": evaluation.target.simulated,
        "model": {"name": evaluation.model.name, "sha256": evaluation.model.sha256},
        "threads": evaluation.threads,
        "environment": evaluation.environment,
        "results_store": str(evaluation.results_path),
        "warnings": evaluation.warnings,
        "timing_noise": evaluation.noise or None,
        "batch": batch,
        "candidates": [_candidate_json(r, d, batch) for r, d in zip(evaluation.results, candidate_dicts(evaluation))],
    }


def _candidate_json(result: Any, found: dict[str, Any], batch: int) -> dict[str, Any]:
    if found.get("latency"):
        found["latency"]["throughput_per_s"] = result.timing.stats.throughput_per_s(batch)
    return found


def _run_suite(path: Path, target: Optional[str], results: Optional[str], targets_dir: Optional[Path],
               as_json: bool, rpc_tracker: Optional[str] = None) -> None:
    suite = load_suite(path)
    with progress_reporter(as_json) as progress:
        run = run_suite(suite, target, results, targets_dir, progress, rpc_tracker=rpc_tracker)
    if as_json:
        print_json({"run_id": run.run_id, "suite": str(path), "errors": run.errors,
                    "entries": {name: _evaluation_json(e) for name, e in run.evaluations.items()}})
    else:
        for name, evaluation in run.evaluations.items():
            out.print(candidates_table(evaluation.results, f"{name} on {evaluation.target.name}: "
                                       f"{suite.sessions} session(s) pooled, measured", target=evaluation.target))
        for name, error in run.errors.items():
            out.print(f"[red]{name}: {error}[/]")
        out.print(f"run: {run.run_id}  (compare with: edgetune bench compare --baseline BASELINE --candidate {run.run_id})")
    if run.errors:
        raise SystemExit(EXIT_ERROR)


@command.command("compare")
@click.option("--baseline", required=True, help="A run id, 'previous', or a baseline JSON file (benchmarks/baselines/).")
@click.option("--candidate", default="latest", show_default=True, help="A run id, 'latest', or a JSON file.")
@click.option("--suite", type=click.Path(path_type=Path), default=None, help="Suite file for per-entry thresholds.")
@click.option("--min-effect", type=float, default=0.05, show_default=True,
              help="Smallest slowdown that counts (0.05 = 5%) where the suite gives none.")
@click.option("--allow-env-mismatch", is_flag=True, help="Compare runs from different environments anyway.")
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Write JUnit XML here.")
@click.option("--retime", type=click.Choice(RETIME_MODES), default="auto", show_default=True,
              help="Time baseline and candidate artifacts again now, interleaved in isolated workers: 'auto' for "
                   "flagged or inconclusive entries, 'always', or 'never' (run-to-run samples only).")
@_options.results
@_options.json_output
def compare_cmd(baseline: str, candidate: str, suite: Optional[Path], min_effect: float, allow_env_mismatch: bool,
                junit: Optional[Path], retime: str, results: Optional[str], as_json: bool) -> None:
    """Regression gate: exit 3 when an entry got slower (bootstrap CI of the ratio of medians above 1 and
    the slowdown above the threshold, at 95% for the whole suite), broke, or went missing (1 is a tool error,
    2 a usage error)."""
    thresholds = {e.name: e.max_slowdown for e in load_suite(suite).entries} if suite else None
    with ResultsStore(results) as store:
        base_label, base_rows = load_side(baseline, store)
        cand_label, cand_rows = load_side(candidate, store)
        kept = kept_root(store.path)
    with progress_reporter(as_json) as say:
        comparisons = gate(base_rows, cand_rows, kept, thresholds, min_effect, allow_env_mismatch, retime, progress=say)
    if junit:
        junit.write_text(junit_xml(comparisons))
    failed = [c for c in comparisons if c.failed]
    if as_json:
        print_json({"baseline": base_label, "candidate": cand_label, "failed": len(failed),
                    "comparisons": [c.to_dict() for c in comparisons]})
    else:
        table = Table(title=f"{cand_label} vs baseline {base_label}")
        for column in ("entry", "candidate", "verdict", "baseline ms", "candidate ms", "ratio", "95% CI", "threshold", "note"):
            table.add_column(column, overflow="fold")
        style = {"regression": "red", "broken": "red", "missing": "red", "improvement": "green"}
        for c in comparisons:
            table.add_row(
                c.entry, c.candidate, styled(c.verdict, style.get(c.verdict, "")),
                f"{c.baseline_median_ms:.4f}" if c.baseline_median_ms else "-",
                f"{c.candidate_median_ms:.4f}" if c.candidate_median_ms else "-",
                f"{c.ratio:.3f}" if c.ratio else "-",
                f"{c.ci_low:.3f}-{c.ci_high:.3f}" if c.ci_low else "-", f"{c.threshold:.0%}", c.note,
            )
        out.print(table)
        out.print(f"{len(failed)} regression(s)/breakage(s) in {len(comparisons)} comparison(s)")
    if failed:
        raise SystemExit(EXIT_REGRESSION)


@command.command("export")
@click.argument("run")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="JSON file to write.")
@_options.results
def export_cmd(run: str, output: Path, results: Optional[str]) -> None:
    """Write RUN ('latest' or a run id) with its raw samples to a baseline file you can commit."""
    with ResultsStore(results) as store:
        label, rows = load_side(run, store)
    export_baseline(rows, output)
    out.print(f"wrote {output} ({label}, {len(rows)} measurements)")


@command.command("runs")
@click.option("--target", "-t", default=None)
@_options.results
@_options.json_output
def runs_cmd(target: Optional[str], results: Optional[str], as_json: bool) -> None:
    """Runs in the results store, oldest first."""
    with ResultsStore(results) as store:
        runs = list(store.runs(target))
    if as_json:
        print_json([{"run_id": r, "started": s, "measurements": n} for r, s, n in runs])
        return
    for run_id, started, count in runs:
        out.print(f"{run_id}  {started}  {count} measurement(s)")
