"""The Lowering extension point: turn a model of one format into an artifact of another.

Lowerings chain: each takes a LoadedModel and returns an Artifact; ``derive`` turns an
artifact back into a LoadedModel for the next lowering in a candidate's chain (e.g.
prune -> onnx -> ort-quant-static).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Optional

from edgetune._availability import Availability
from edgetune.data import Dataset
from edgetune.errors import ConfigError
from edgetune.models import LoadedModel
from edgetune.targets import Target


@dataclass(frozen=True)
class Artifact:
    """A file a Runner (or the next lowering) can load, with how long it took to produce.

    ``format`` is one of: onnx, tvm-lib, tflite, openvino (the .xml; its .bin lies beside it),
    torch (an ExportedProgram .pt2; ``module`` holds the nn.Module in memory).
    """

    path: Path
    format: str
    build_s: float
    details: dict[str, Any] = field(default_factory=dict)
    module: Any = field(default=None, repr=False, compare=False)
    size_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        # recorded now: bench runs build in a temporary folder that is gone by report time
        size = self.path.stat().st_size
        if self.format == "openvino":
            weights = self.path.with_suffix(".bin")
            size += weights.stat().st_size if weights.exists() else 0
        object.__setattr__(self, "size_bytes", size)


@dataclass(frozen=True)
class CalibrationData:
    """Inputs for calibration (N, ...) and whether they are random (a last resort, recorded)."""

    x: Any  # numpy array, one sample per row, shaped like the model input without its batch dim
    source: str
    is_random: bool = False


@dataclass(frozen=True)
class LoweringContext:
    """What a lowering may need beyond the model: data, options and where to keep reusable state."""

    calibration: Optional[CalibrationData] = None
    train: Optional[Dataset] = None
    eval: Optional[Dataset] = None
    options: Mapping[str, Any] = field(default_factory=dict)
    profiles_dir: Optional[Path] = None  # profiles/<target>/ for tuning records and the like
    progress: Callable[[str], None] = lambda _msg: None

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def with_options(self, options: Mapping[str, Any]) -> "LoweringContext":
        return replace(self, options={**self.options, **options})

    def require_calibration(self, who: str) -> CalibrationData:
        if self.calibration is None:
            raise ConfigError(f"{who} needs calibration data; pass --calib (an .npz, an image folder or 'digits')")
        return self.calibration

    def calibration_samples(self, who: str, model: LoadedModel, default: int = 128) -> tuple[CalibrationData, Any]:
        """The calibration data (checked against the model's input) and its first ``calib_samples`` rows."""
        from edgetune.data import check_matches_input

        calibration = self.require_calibration(who)
        check_matches_input(Dataset(calibration.source, calibration.x, None), model.inputs[0].shape, "calibration")
        return calibration, calibration.x[: int(self.option("calib_samples", default))]

    @staticmethod
    def calibration_details(calibration: CalibrationData, samples: Any) -> dict[str, Any]:
        """What every calibrated artifact records about its calibration (random data is flagged)."""
        return {"calibration_samples": int(len(samples)), "calibration_source": calibration.source,
                "calibration_random": calibration.is_random}


class Lowering(ABC):
    """One transformation with a declared input and output format."""

    name: ClassVar[str]
    input_format: ClassVar[str]
    output_format: ClassVar[str]
    modules: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""
    # LoweringContext.options this lowering reads; chains sharing a prefix with equal values
    # for these keys reuse one build (e.g. one pruned model feeds several runtimes).
    option_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def availability(cls) -> Availability:
        """Whether the libraries this lowering needs are installed."""
        return Availability.of_modules(cls.modules, cls.extra)

    # Other formats the lowering converts from itself (e.g. a torch model quantized to .tflite first).
    also_accepts: ClassVar[tuple[str, ...]] = ()

    def accepts(self, model: LoadedModel) -> bool:
        """Whether ``model`` is available in this lowering's input format (or one it converts from)."""
        return any(f in model.formats for f in (self.input_format, *self.also_accepts))

    @abstractmethod
    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        """Lower ``model`` for ``target``, writing the artifact under ``workdir``."""


def derive(model: LoadedModel, artifact: Artifact, workdir: Path) -> LoadedModel:
    """The model as the next lowering in a chain sees it after ``artifact`` was produced."""
    if artifact.format == "onnx":
        return replace(model, onnx_path=artifact.path, tflite_path=None, torch_module=None)
    if artifact.format == "tflite":
        return replace(model, onnx_path=None, tflite_path=artifact.path, torch_module=None)
    if artifact.format == "torch":
        from edgetune.models._load import export_module_to_onnx

        onnx_path = workdir / f"{model.name}.derived.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_module_to_onnx(artifact.module, tuple(model.inputs[0].shape), onnx_path, model.source)
        return replace(model, onnx_path=onnx_path, tflite_path=None, torch_module=artifact.module)
    # tvm-lib, openvino: end formats; nothing lowers further from them
    return replace(model, onnx_path=None, tflite_path=None, torch_module=None)
