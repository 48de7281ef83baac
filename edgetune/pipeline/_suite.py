"""Running a regression suite: every entry through the benchmark harness under one run id."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from edgetune.bench import BenchConfig, Suite, SuiteEntry, git_commit, new_run_id
from edgetune.errors import EdgetuneError
from edgetune.pipeline._evaluate import Evaluation
from edgetune.pipeline._options import CompileOptions
from edgetune.pipeline._run import benchmark


def _model_for(entry: SuiteEntry, suite_dir: Path) -> tuple[Any, Optional[tuple[int, ...]]]:
    if entry.model.startswith("zoo:"):
        from edgetune._lazy import require
        from edgetune.models import zoo_model

        require("torch", "torch").manual_seed(0)  # the same weights every run: comparable artifacts
        module, shape = zoo_model(entry.model[4:])
        return module, entry.input_shape or shape
    path = suite_dir / entry.model
    if path.exists():
        return path, entry.input_shape
    return entry.model, entry.input_shape  # package.module:factory or a path the loader will report


@dataclass
class SuiteRun:
    """What a suite run produced: its run id and each entry's evaluation (or error)."""

    run_id: str
    suite: Suite
    evaluations: dict[str, Evaluation] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def run_suite(
    suite: Suite,
    target: Optional[str] = None,
    results_path: Optional[str] = None,
    targets_dir: Optional[Path] = None,
    progress: Optional[Callable[[str], None]] = None,
    run_id: Optional[str] = None,
    rpc_tracker: Optional[str] = None,
) -> SuiteRun:
    """Run every entry through the benchmark harness under one run id; an entry's failure is recorded, not fatal.

    An rpc target is measured on its boards through ``rpc_tracker`` (HOST:PORT, default $EDGETUNE_RPC_TRACKER).
    """
    say = progress or (lambda _msg: None)
    run = SuiteRun(run_id or new_run_id(git_commit()), suite)
    suite_dir = Path(suite.source).parent if suite.source else Path.cwd()
    suite_name = Path(suite.source).stem if suite.source else suite.target
    for entry in suite.entries:
        say(f"suite entry {entry.name}")
        try:
            model, shape = _model_for(entry, suite_dir)
            run.evaluations[entry.name] = benchmark(
                model, target or suite.target, runtimes=entry.runtimes or None, threads=entry.threads,
                input_shape=shape, config=BenchConfig(budget_s=entry.budget_s or suite.budget_s),
                results_path=results_path, targets_dir=targets_dir, progress=progress,
                precisions=entry.precisions, options=CompileOptions(calib=entry.calib),
                sessions=suite.sessions, run_id=run.run_id, labels={"suite": suite_name, "entry": entry.name},
                rpc_tracker=rpc_tracker,
            )
        except EdgetuneError as exc:
            run.errors[entry.name] = str(exc)
            say(f"{entry.name}: {exc}")
    return run
