"""The Lowering extension point: turn a model of one format into an artifact of another."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgetune._availability import Availability
from edgetune.models import LoadedModel
from edgetune.targets import Target


@dataclass(frozen=True)
class Artifact:
    """A file a Runner can load, with how long it took to produce and what produced it."""

    path: Path
    format: str
    build_s: float
    details: dict[str, Any] = field(default_factory=dict)
    size_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        # recorded now: bench runs build in a temporary folder that is gone by report time
        object.__setattr__(self, "size_bytes", self.path.stat().st_size)


class Lowering(ABC):
    """One transformation with a declared input and output format."""

    name: ClassVar[str]
    input_format: ClassVar[str]
    output_format: ClassVar[str]
    modules: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""

    @classmethod
    def availability(cls) -> Availability:
        """Whether the libraries this lowering needs are installed."""
        return Availability.of_modules(cls.modules, cls.extra)

    def accepts(self, model: LoadedModel) -> bool:
        """Whether ``model`` is available in this lowering's input format."""
        return self.input_format in model.formats

    @abstractmethod
    def apply(self, model: LoadedModel, target: Target, workdir: Path) -> Artifact:
        """Lower ``model`` for ``target``, writing the artifact under ``workdir``."""
