"""`edgetune search`: hardware-constrained NAS + HPO; `edgetune search status`: what a study holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
from rich.table import Table

from edgetune.cli import _options
from edgetune.cli._render import out, print_json, progress_reporter


@click.group("search", invoke_without_command=True)
@_options.target
@click.option("--dataset", "-d", default="digits", show_default=True, help="Built-in name, an .npz (x, y) or an image folder.")
@click.option("--latency-budget-ms", type=float, default=None, help="Hard latency limit: checked on the predicted latency before training (infeasible candidates are "
                   "not trained), again after lowering (int8/fp16 builds measured), and on the measured top-k.")
@click.option("--trials", type=int, default=12, show_default=True, help="Total trials of the study (a resumed study counts those stored).")
@click.option("--strategy", default="nsga2", show_default=True,
              help="Optuna sampler: nsga2 (evolutionary), tpe, gp (Bayesian), random, grid.")
@click.option("--objective", default="accuracy-latency", show_default=True,
              help="accuracy-latency or accuracy-latency-size: a Pareto front (Optuna cannot prune multi-objective "
                   "trials early); accuracy: one objective, bad trials pruned on their learning curves (--pruner).")
@click.option("--pruner", default="median", show_default=True, help="median, hyperband or none (single-objective only).")
@click.option("--space", "space_name", default="mobilenet", show_default=True, help="mobilenet or plain, or a YAML file of choices.")
@click.option("--storage", default=None, help="Optuna storage URL (default sqlite:///OUT/study.db); postgresql://... for several workers.")
@click.option("--study", "study_name", default=None, help="Study name (default: SPACE-TARGET-DATASET).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-epochs", type=int, default=None, help="Cap every trial's epochs (quick looks).")
@click.option("--top-k", type=int, default=3, show_default=True, help="Front members measured on the target.")
@click.option("--no-compile", is_flag=True, help="Stop after picking the winner (no `edgetune compile`).")
@click.option("--runtime", "-r", "runtimes", multiple=True, help="Runtimes the winner is compiled for (default: the target's).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("edgetune-search"), show_default=True)
@_options.json_output
@click.pass_context
def command(ctx: click.Context, target: str, dataset: str, latency_budget_ms: Optional[float], trials: int, strategy: str,
            objective: str, pruner: str, space_name: str, storage: Optional[str], study_name: Optional[str], seed: int,
            max_epochs: Optional[int], top_k: int, no_compile: bool, runtimes: tuple[str, ...], output: Path,
            as_json: bool) -> None:
    """Search networks + hyperparameters that are accurate and fit TARGET; measure the best, compile the winner."""
    if ctx.invoked_subcommand is not None:
        return
    from edgetune.search import SearchConfig, SearchSpace, search

    space = SearchSpace.from_yaml(space_name) if space_name.endswith((".yaml", ".yml")) else SearchSpace(space_name)
    config = SearchConfig(dataset=dataset, latency_budget_ms=latency_budget_ms, trials=trials, strategy=strategy,
                          objective=objective, storage=storage, study_name=study_name, seed=seed, max_epochs=max_epochs,
                          pruner=pruner)
    with progress_reporter(as_json) as progress:
        result = search(target, output, config, space, top_k=top_k, compile_winner=not no_compile,
                        compile_runtimes=list(runtimes) or None, progress=progress)
    if as_json:
        print_json((output / "search.json").read_text() and __import__("json").loads((output / "search.json").read_text()))
        return
    table = Table(title=f"Pareto front of study {result.study_name} ({len(result.trials)} trials, predictor: {result.predictor})")
    for column in ("trial", "val. top-1", "predicted ms (fp32)", "search latency ms", "measured ms (top-k)", "size KB",
                   "deploy", "architecture"):
        table.add_column(column, justify="left" if column in ("architecture", "deploy") else "right")
    for t in result.front:
        arch = ", ".join(f"{k}={v}" for k, v in t.candidate.get("arch", {}).items() if k not in ("stage_channels", "stem"))
        d = t.candidate.get("deploy", {})
        mark = " *" if result.winner is not None and t.number == result.winner.number else ""
        table.add_row(f"{t.number}{mark}", f"{t.accuracy:.3f}", f"{t.predicted_ms:.4g}",
                      f"{t.latency_ms:.4g} ({t.latency_source})" if t.latency_ms is not None else "-",
                      f"{t.measured_ms:.4g}" if t.measured_ms else "-", f"{t.size_kb:.1f}" if t.size_kb else "-",
                      f"{d.get('precision', 'fp32')}, pruned {d.get('prune_ratio', 0):.0%}", arch)
    out.print(table)
    before = sum(1 for t in result.trials if t.rejected.endswith("(not trained)"))
    after = sum(1 for t in result.trials if t.rejected and not t.rejected.endswith("(not trained)"))
    if before or after:
        out.print(f"constraints: {before} candidates rejected before training (predicted), {after} after lowering "
                  "(see search.json for why)")
    out.print("predicted ms: the latency predictor on the fp32 network; search latency: what the study optimised "
              "(predicted, or measured for int8/fp16 builds); measured ms: the top-k timed on the target after the search")
    for note in result.notes:
        out.print(f"[yellow]{note}[/]")
    if result.winner is not None:
        out.print(f"winner: trial {result.winner.number} (* above), top-1 {result.winner.accuracy:.3f}, "
                  f"measured {result.winner.measured_ms:.4g} ms")
    if result.compiled is not None and result.compiled.artifact is not None:
        out.print(f"compiled: {result.compiled.winner.name} -> {result.compiled.artifact}")
    out.print(f"wrote {output}/search.json, {output}/pareto.svg")


@command.command("status")
@click.option("--storage", default=None, help="Optuna storage URL (default: sqlite:///OUT/study.db).")
@click.option("--study", "study_name", default=None)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("edgetune-search"), show_default=True)
@_options.json_output
def status(storage: Optional[str], study_name: Optional[str], output: Path, as_json: bool) -> None:
    """Trials by state, front size and best accuracy of the studies in a storage."""
    from edgetune.search import SearchError, study_status

    if storage is None:
        db = output / "study.db"
        if not db.exists():
            raise SearchError(f"no study in {output} (no study.db); give --storage or the search's -o folder")
        storage = f"sqlite:///{db.resolve()}"
    rows = study_status(storage, study_name)
    if as_json:
        print_json(rows)
        return
    table = Table(title="studies")
    for column in ("study", "trials", "by state", "front", "best top-1"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["study"], str(row["trials"]), ", ".join(f"{k} {v}" for k, v in row["states"].items()),
                      str(row["front"]), f"{row['best_accuracy']:.3f}" if row["best_accuracy"] is not None else "-")
    out.print(table)


@command.command("supernet")
@click.option("--dataset", "-d", default="digits", show_default=True)
@click.option("--space", "space_name", default="mobilenet", show_default=True, help="mobilenet or a YAML file narrowing it.")
@click.option("--samples", type=int, default=12, show_default=True, help="Architectures ranked by the trained supernet.")
@click.option("--standalone", type=int, default=6, show_default=True, help="Of those, how many are also trained alone (Kendall tau).")
@click.option("--epochs", type=int, default=4, show_default=True, help="Supernet and stand-alone training epochs.")
@click.option("--seed", type=int, default=0, show_default=True)
@_options.json_output
def supernet(dataset: str, space_name: str, samples: int, standalone: int, epochs: int, seed: int, as_json: bool) -> None:
    """Train a weight-sharing supernet once, rank sampled architectures, check the ranking against stand-alone training."""
    from edgetune.data import load_dataset
    from edgetune.search import SearchSpace
    from edgetune.search._supernet import ranking_agreement

    space = SearchSpace.from_yaml(space_name) if space_name.endswith((".yaml", ".yml")) else SearchSpace(space_name)
    scores = ranking_agreement(space, load_dataset(dataset), samples, standalone, epochs, epochs, seed)
    rows = [{"arch": c.arch, "supernet_accuracy": s, "standalone_accuracy": a}
            for c, s, a in zip(scores.candidates, scores.supernet_accuracy, scores.standalone_accuracy)]
    if as_json:
        print_json({"kendall_tau": scores.kendall_tau, "architectures": rows})
        return
    table = Table(title=f"{samples} architectures ranked by the supernet")
    for column in ("rank", "supernet top-1", "alone top-1", "architecture"):
        table.add_column(column)
    order = sorted(range(len(rows)), key=lambda i: -rows[i]["supernet_accuracy"])  # type: ignore[operator]
    for rank, i in enumerate(order, 1):
        arch = ", ".join(f"{k}={v}" for k, v in rows[i]["arch"].items() if k not in ("stage_channels", "stem"))  # type: ignore[union-attr]
        alone = rows[i]["standalone_accuracy"]
        table.add_row(str(rank), f"{rows[i]['supernet_accuracy']:.3f}", f"{alone:.3f}" if alone is not None else "-", arch)
    out.print(table)
    tau = scores.kendall_tau
    out.print(f"Kendall tau (supernet vs stand-alone, {min(standalone, samples)} architectures): "
              + (f"{tau:.2f}" if tau is not None else "undefined (ties or too few)"))
