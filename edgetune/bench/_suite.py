"""Regression suites: benchmarks/suites/<target>.yaml lists models x runtimes x precisions to measure.

This module reads and validates them; running one is the pipeline's (edgetune.pipeline.run_suite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

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
