"""The Lowering extension point: turn a model of one format into an artifact of another.

Lowerings chain: each takes a LoadedModel and returns an Artifact; ``derive`` turns an
artifact back into a LoadedModel for the next lowering in a candidate's chain (e.g.
prune -> onnx -> ort-quant-static).

A lowering declares everything the compile pipeline needs to know about it, so that adding one
is one module plus one entry in ``edgetune.lowering.LOWERINGS``:

- its options, a frozen dataclass given as the type argument (``class X(Lowering[XOptions])``):
  the fields are the ``LoweringContext.options`` keys it reads, and they decide build sharing;
- its ``variants`` (the candidates it contributes: runtime, precision, the lowerings before it)
  and ``expand``/``prefixes`` (which of them a compile request asks for, with what options);
- where it applies: a variant's runtime and precision are matched against the target's,
  ``expand`` drops variants a request does not ask for, ``accepts`` checks the model's formats.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Mapping, Optional, Protocol, TypeVar, cast, get_args, get_origin

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
class Transport:
    """How a build reaches remote devices (e.g. tvm-tuned measuring on boards): kept apart from lowering options."""

    rpc_tracker: Optional[str] = None  # HOST:PORT of the TVM RPC tracker; None: $EDGETUNE_RPC_TRACKER


@dataclass(frozen=True)
class LoweringContext:
    """What a lowering may need beyond the model: data, options and where to keep reusable state.

    ``options`` holds every lowering's option values by key (a candidate's plan adds its own);
    each lowering reads the keys of its options dataclass (``Lowering.read_options``).
    """

    calibration: Optional[CalibrationData] = None
    train: Optional[Dataset] = None
    eval: Optional[Dataset] = None
    options: Mapping[str, Any] = field(default_factory=dict)
    profiles_dir: Optional[Path] = None  # profiles/<target>/ for tuning records and the like
    progress: Callable[[str], None] = lambda _msg: None
    transport: Transport = Transport()

    def with_options(self, options: Mapping[str, Any]) -> "LoweringContext":
        """This context with ``options`` added (replacing values of the same keys)."""
        return replace(self, options={**self.options, **options})

    def require_calibration(self, who: str) -> CalibrationData:
        """The calibration data, or a ConfigError naming ``who`` needs it."""
        if self.calibration is None:
            raise ConfigError(f"{who} needs calibration data; pass --calib (an .npz, an image folder or 'digits')")
        return self.calibration

    def checked_calibration(self, who: str, model: LoadedModel) -> CalibrationData:
        """The calibration data, checked against the model's input (DatasetError on a mismatch)."""
        from edgetune.data import check_matches_input

        calibration = self.require_calibration(who)
        check_matches_input(Dataset(calibration.source, calibration.x, None), model.inputs[0].shape, "calibration")
        return calibration

    @staticmethod
    def calibration_details(calibration: CalibrationData, samples: Any) -> dict[str, Any]:
        """What every calibrated artifact records about its calibration (random data is flagged)."""
        return {"calibration_samples": int(len(samples)), "calibration_source": calibration.source,
                "calibration_random": calibration.is_random}


OptionsT = TypeVar("OptionsT", bound="LoweringOptions")


@dataclass(frozen=True)
class LoweringOptions:
    """A lowering's options: subclass as a frozen dataclass whose fields are the option keys it reads.

    The fields decide build sharing too: chains sharing a prefix with equal values for every
    field of every step reuse one build (e.g. one pruned model feeds several runtimes), so an
    option a lowering reads always counts. This class itself is the empty set of options.
    """

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The option keys: the dataclass's field names, in order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def of(cls: type[OptionsT], values: Mapping[str, Any]) -> OptionsT:
        """The options found in ``values`` (other keys ignored), defaults for the rest."""
        return cls(**{key: values[key] for key in cls.keys() if key in values})


@dataclass(frozen=True)
class CalibrationOptions(LoweringOptions):
    """Options of a lowering calibrated on the first ``calib_samples`` rows of the calibration data."""

    calib_samples: int = 128

    def __post_init__(self) -> None:
        object.__setattr__(self, "calib_samples", int(self.calib_samples))


@dataclass(frozen=True)
class Variant:
    """A candidate a lowering contributes: its artifact run by ``runtime`` at ``precision``.

    ``after`` names the lowerings that run before this one in the candidate's chain (the chain
    is ``(*after, lowering.name)``); ``suffix`` tells the candidate from others of the same
    runtime and precision (``onnxruntime-int8-static``).
    """

    runtime: str
    precision: str
    suffix: str = ""
    after: tuple[str, ...] = ()


class PlanRequest(Protocol):
    """What a compile asks for that decides which candidates lowerings contribute (``pipeline.CompileOptions``)."""

    @property
    def train(self) -> Optional[str]: ...
    @property
    def eval(self) -> Optional[str]: ...
    @property
    def qat(self) -> str: ...
    @property
    def tune_trials(self) -> int: ...
    @property
    def tuning_records(self) -> Optional[str]: ...
    @property
    def calib_methods(self) -> tuple[str, ...]: ...
    @property
    def prune_ratios(self) -> tuple[float, ...]: ...


# A candidate's name and the options that set it apart from the other variants of its chain.
NamedOptions = tuple[str, dict[str, Any]]


class Lowering(ABC, Generic[OptionsT]):
    """One transformation with a declared input and output format.

    The type argument is the lowering's options dataclass (``class X(Lowering[XOptions])``;
    none: ``LoweringOptions``); ``option_keys`` is derived from its fields, never listed by hand.
    """

    name: ClassVar[str]
    input_format: ClassVar[str]
    output_format: ClassVar[str]
    modules: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""
    options_type: ClassVar[type[LoweringOptions]] = LoweringOptions
    option_keys: ClassVar[tuple[str, ...]] = ()  # the fields of options_type; set for each subclass
    variants: ClassVar[tuple[Variant, ...]] = ()  # candidates whose chain ends in this lowering
    # False where the artifact computes a different function than the model (pruning): never checked
    # against the fp32 reference as exact, whatever its precision.
    preserves_outputs: ClassVar[bool] = True
    # The lowering whose candidate this one's improves on at a cost (quantization-aware training for
    # post-training int8): with --qat auto it is built only where that candidate missed the accuracy budget.
    improves_on: ClassVar[Optional[str]] = None
    # Other formats the lowering converts from itself (e.g. a torch model quantized to .tflite first).
    also_accepts: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "option_keys" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: option_keys are the fields of its options dataclass "
                            "(class X(Lowering[XOptions])), not a list of their own")
        for base in cls.__dict__.get("__orig_bases__", ()):
            if get_origin(base) is Lowering:
                (argument,) = get_args(base)
                if isinstance(argument, type) and issubclass(argument, LoweringOptions):
                    cls.options_type = argument
        cls.option_keys = cls.options_type.keys()

    @classmethod
    def availability(cls) -> Availability:
        """Whether the libraries this lowering needs are installed."""
        return Availability.of_modules(cls.modules, cls.extra)

    @classmethod
    def expand(cls, candidates: list[NamedOptions], request: PlanRequest) -> list[NamedOptions]:
        """The candidates of a chain holding this lowering that ``request`` asks for (default: all, as they are).

        A lowering drops them where the request does not ask for it (e.g. QAT without training
        data), adds the options it takes from the request, or multiplies them (one per method).
        """
        return candidates

    @classmethod
    def prefixes(cls, request: PlanRequest) -> list[NamedOptions]:
        """For a lowering run on the source model before other chains (pruning): one (name suffix, options)
        per extra candidate it makes of every candidate; none by default."""
        return []

    def accepts(self, model: LoadedModel) -> bool:
        """Whether ``model`` is available in this lowering's input format (or one it converts from)."""
        return any(f in model.formats for f in (self.input_format, *self.also_accepts))

    def read_options(self, context: LoweringContext) -> OptionsT:
        """This lowering's options from ``context`` (validated by the options dataclass)."""
        return cast(OptionsT, self.options_type.of(context.options))

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
