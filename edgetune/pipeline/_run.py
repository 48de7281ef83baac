"""The library functions behind `edgetune compile` and `edgetune bench`."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from edgetune.bench import BenchConfig, ResultsStore, git_commit, new_run_id
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.models import LoadedModel, load_model
from edgetune.models._spec import ShapeArg
from edgetune.pipeline._candidates import CandidateResult, plans_for
from edgetune.pipeline._evaluate import Evaluation, Progress, evaluate_candidates
from edgetune.pipeline._fidelity import Tolerance
from edgetune.pipeline._output import write_outputs
from edgetune.pipeline._select import select_winner
from edgetune.targets import Target, load_target, require_runnable

ModelArg = Union[str, Path, Any]


class NoViableCandidateError(EdgetuneError):
    """Every candidate failed, was skipped or did not match the reference."""


@dataclass
class CompileResult:
    """Outcome of compile_model: the winner, every candidate, and where things were written."""

    evaluation: Evaluation
    winner: Optional[CandidateResult]
    reason: str
    output_dir: Path
    artifact: Optional[Path]
    manifest_path: Path


def _resolve_target(target: Union[str, Target], targets_dir: Optional[Path]) -> Target:
    resolved = target if isinstance(target, Target) else load_target(target, targets_dir)
    require_runnable(resolved)
    return resolved


def _threads(target: Target, threads: Optional[int]) -> int:
    if threads is None:
        return target.thread_count
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    return threads


def benchmark(
    model: ModelArg,
    target: Union[str, Target] = "host-cpu",
    runtimes: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
    input_shape: ShapeArg = None,
    config: BenchConfig = BenchConfig(),
    tolerance: Tolerance = Tolerance(),
    results_path: Optional[Path] = None,
    targets_dir: Optional[Path] = None,
    progress: Optional[Progress] = None,
) -> Evaluation:
    """Measure a model on a target with each (or the given) runtime and store every measurement."""
    resolved = _resolve_target(target, targets_dir)
    plans = plans_for(resolved, runtimes)
    with tempfile.TemporaryDirectory(prefix="edgetune-bench-") as tmp:
        loaded = _load(model, input_shape, Path(tmp) / "model")
        with ResultsStore(results_path) as store:
            return evaluate_candidates(
                loaded, resolved, plans, Path(tmp), _threads(resolved, threads),
                new_run_id(git_commit()), config, tolerance, store, progress,
            )


def compile_model(
    model: ModelArg,
    target: Union[str, Target] = "host-cpu",
    output_dir: Union[str, Path] = "edgetune-out",
    runtimes: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
    input_shape: ShapeArg = None,
    config: BenchConfig = BenchConfig(budget_s=5.0),
    tolerance: Tolerance = Tolerance(),
    results_path: Optional[Path] = None,
    targets_dir: Optional[Path] = None,
    progress: Optional[Progress] = None,
) -> CompileResult:
    """Produce an artifact per runnable runtime, measure each, and keep the fastest that matches fp32.

    Writes ``output_dir`` with the chosen artifact, ``manifest.json`` and ``summary.txt``.
    Raises NoViableCandidateError (after writing the manifest) when no candidate qualifies.
    """
    resolved = _resolve_target(target, targets_dir)
    plans = plans_for(resolved, runtimes)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path '{out}' exists and is not a folder; choose another -o")
    candidates_dir = out / "candidates"
    if candidates_dir.exists():
        shutil.rmtree(candidates_dir)  # artifacts of an earlier compile into the same folder
    candidates_dir.mkdir(parents=True)
    loaded = _load(model, input_shape, candidates_dir / "_input")
    with ResultsStore(results_path) as store:
        evaluation = evaluate_candidates(
            loaded, resolved, plans, candidates_dir, _threads(resolved, threads),
            new_run_id(git_commit()), config, tolerance, store, progress,
        )
    winner, reason = select_winner(evaluation.results)
    artifact, manifest = write_outputs(out, evaluation, winner, reason, config, tolerance)
    result = CompileResult(evaluation, winner, reason, out, artifact, manifest)
    if winner is None:
        raise NoViableCandidateError(f"{reason}; details in {manifest}")
    return result


def _load(model: ModelArg, input_shape: ShapeArg, workdir: Path) -> LoadedModel:
    return load_model(model, input_shape=input_shape, workdir=workdir)
