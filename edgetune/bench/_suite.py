"""Regression suites: benchmarks/suites/<target>.yaml lists models x runtimes x precisions to measure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgetune._validation import describe_validation_error
from edgetune.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SuiteEntry(_Strict):
    """One model measured with some runtimes and precisions, with its regression threshold."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: str  # a file (relative to the suite file), zoo:NAME, or package.module:factory
    input_shape: Optional[tuple[int, ...]] = None
    runtimes: tuple[str, ...] = ()  # empty: every runtime the target lists
    precisions: Optional[tuple[Literal["fp32", "fp16", "int8"], ...]] = None  # default: fp32, or int8 on int8-only devices
    calib: Optional[str] = None
    threads: Optional[int] = Field(default=None, ge=1)
    budget_s: Optional[float] = Field(default=None, gt=0)
    max_slowdown: float = Field(default=0.05, ge=0, lt=10)  # regression only if slower by more than this


class Suite(_Strict):
    """A regression suite for one target."""

    schema_version: Literal[1]
    target: str
    description: str = ""
    sessions: int = Field(default=3, ge=1, le=20)
    budget_s: float = Field(default=2.0, gt=0)
    entries: tuple[SuiteEntry, ...] = Field(min_length=1)
    source: str = Field(default="", exclude=True)

    def entry(self, name: str) -> SuiteEntry:
        return {e.name: e for e in self.entries}[name]


def load_suite(path: Union[str, Path]) -> Suite:
    """Read and validate a suite file; errors name the file and the key."""
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read suite file '{path}' ({exc.strerror}); check the path") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a suite file must be a mapping of keys")
    try:
        suite = Suite.model_validate({**raw, "source": str(path)})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, raw, exc)) from None
    names = [e.name for e in suite.entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: entry name(s) used twice: {', '.join(duplicates)}")
    return suite


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
    evaluations: dict[str, Any] = field(default_factory=dict)
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
    from edgetune.bench._fingerprint import git_commit
    from edgetune.bench._harness import BenchConfig
    from edgetune.bench._store import new_run_id
    from edgetune.errors import EdgetuneError
    from edgetune.pipeline import CompileOptions, benchmark

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
