"""ONNX -> OpenVINO IR, in fp32 or quantized to int8 by NNCF post-training quantization."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from edgetune.data import Dataset
from edgetune.errors import ConfigError, ModelError, RunnerError, UnsupportedOperatorError
from edgetune.lowering._base import (
    Artifact,
    Lowering,
    LoweringContext,
    LoweringOptions,
    NamedOptions,
    PlanRequest,
    Variant,
)
from edgetune.models import LoadedModel
from edgetune.runners._openvino import openvino_error_line
from edgetune.targets import Target

_UNCONVERTED_RE = re.compile(r"No conversion rule found for operations?:\s*([^\n]+)")
_PRESETS = ("performance", "mixed")
_MAX_SUBSET = 300


def convert_onnx(model: LoadedModel) -> Any:
    """The model's ONNX form as an in-memory openvino.Model (static shapes, fp32 weights)."""
    import openvino as ov

    if model.onnx_path is None:
        raise ModelError(f"model '{model.name}' has no ONNX form")
    try:
        return ov.convert_model(str(model.onnx_path))
    except Exception as exc:
        found = _UNCONVERTED_RE.search(str(exc))
        if found:
            raise UnsupportedOperatorError(
                f"OpenVINO's ONNX frontend cannot convert operator(s) {found.group(1).strip()}"
            ) from None
        raise RunnerError(f"OpenVINO cannot convert the model: {openvino_error_line(exc)}") from None


def save_ir(ov_model: Any, path: Path) -> None:
    """Write ``path`` (.xml) and its .bin, keeping fp32 weights (no fp16 compression)."""
    import openvino as ov

    ov.save_model(ov_model, str(path), compress_to_fp16=False)


@contextlib.contextmanager
def quiet_nncf() -> Iterator[None]:
    """Hide NNCF's INFO logs, warnings and rich progress bars (drawn on stdout) for the block."""
    import nncf
    from nncf.common.logging import nncf_logger

    previous = nncf_logger.level
    nncf.set_log_level(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        nncf.set_log_level(previous)


class OpenVinoLowering(Lowering):
    """ONNX -> openvino.convert_model -> IR (.xml + .bin), fp32 weights."""

    name = "openvino"
    input_format = "onnx"
    output_format = "openvino"
    modules = ("openvino",)
    extra = "openvino"
    variants = (Variant("openvino", "fp32"),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        start = time.perf_counter()
        out = workdir / f"{model.name}.xml"
        save_ir(convert_onnx(model), out)
        return Artifact(out, "openvino", time.perf_counter() - start, {"precision": "fp32"})


@dataclass(frozen=True)
class NncfOptions(LoweringOptions):
    """NNCF's quantization preset, and whether (and within what top-1 drop) to control accuracy."""

    nncf_preset: str = "performance"
    accuracy_aware: bool = False
    max_accuracy_drop: float = 1.0  # percentage points

    def __post_init__(self) -> None:
        object.__setattr__(self, "nncf_preset", str(self.nncf_preset).lower())
        if self.nncf_preset not in _PRESETS:
            raise ConfigError(f"nncf_preset must be one of {', '.join(_PRESETS)}, not '{self.nncf_preset}'")
        object.__setattr__(self, "accuracy_aware", bool(self.accuracy_aware))
        object.__setattr__(self, "max_accuracy_drop", float(self.max_accuracy_drop))


class NncfLowering(Lowering[NncfOptions]):
    """ONNX -> OpenVINO -> NNCF post-training int8 quantization (optionally accuracy-controlled) -> IR.

    Options: ``nncf_preset`` (performance: symmetric activations, the fastest on CPU; mixed:
    asymmetric activations, for models whose activations are not ReLU-like), ``accuracy_aware``
    (needs labelled evaluation data; keeps layers in fp32 until the drop is at most
    ``max_accuracy_drop`` percentage points of top-1 accuracy).
    """

    name = "openvino-nncf-int8"
    input_format = "onnx"
    output_format = "openvino"
    modules = ("openvino", "nncf")
    extra = "openvino"
    variants = (Variant("openvino", "int8", "nncf"),)

    @classmethod
    def expand(cls, candidates: list[NamedOptions], request: PlanRequest) -> list[NamedOptions]:
        """With labelled validation data (--eval), each candidate also accuracy-aware, beside the plain one."""
        if not request.eval:
            return candidates
        return [*candidates, *((f"{name}-accuracy-aware", {**options, "accuracy_aware": True})
                               for name, options in candidates)]

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        import nncf

        calibration = context.require_calibration(self.name)
        samples = _checked_samples(calibration.x, model, "calibration data")
        options = self.read_options(context)  # an unknown nncf_preset is a ConfigError
        preset_name, accuracy_aware, max_drop_pct = options.nncf_preset, options.accuracy_aware, options.max_accuracy_drop
        validation = _validation_data(context.eval, model, self.name) if accuracy_aware else None

        start = time.perf_counter()
        ov_model = convert_onnx(model)
        subset_size = min(_MAX_SUBSET, len(samples))
        context.progress(f"{self.name}: calibrating on {subset_size} samples ({calibration.source})")
        calibration_set = nncf.Dataset(range(len(samples)), lambda i: samples[i : i + 1])
        common: dict[str, Any] = {
            "preset": nncf.QuantizationPreset(preset_name),
            "target_device": nncf.TargetDevice.CPU,
            "subset_size": subset_size,
        }
        try:
            with quiet_nncf():
                if validation is None:
                    quantized = nncf.quantize(ov_model, calibration_set, **common)
                else:
                    x, y = validation
                    quantized = nncf.quantize_with_accuracy_control(
                        ov_model,
                        calibration_set,
                        nncf.Dataset(range(len(x)), lambda i: x[i : i + 1]),
                        lambda compiled, indices: _top1_accuracy(compiled, x, y, indices),
                        max_drop=max_drop_pct / 100,
                        drop_type=nncf.DropType.ABSOLUTE,
                        **common,
                    )
        except Exception as exc:
            raise RunnerError(f"NNCF quantization failed: {openvino_error_line(exc)}") from None
        out = workdir / f"{model.name}.int8.xml"
        save_ir(quantized, out)
        details = {
            "precision": "int8",
            "quantizer": "nncf",
            "preset": preset_name,
            "subset_size": subset_size,
            "accuracy_aware": validation is not None,
            "calibration_source": calibration.source,
            "calibration_random": calibration.is_random,
            "fake_quantize_ops": sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops()),
        }
        if validation is not None:
            details.update(max_accuracy_drop_pct=max_drop_pct, validation_samples=len(validation[0]))
        return Artifact(out, "openvino", time.perf_counter() - start, details)


def _checked_samples(x: Any, model: LoadedModel, what: str) -> np.ndarray:
    """``x`` as float32 (N, *input_shape[1:]); a wrong shape or count is a ConfigError."""
    if len(model.inputs) != 1:
        raise ConfigError(f"int8 calibration supports single-input models; '{model.name}' has {len(model.inputs)}")
    samples = np.asarray(x, dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    if samples.ndim != len(expected) + 1 or tuple(samples.shape[1:]) != expected:
        raise ConfigError(
            f"{what} samples are shaped {tuple(samples.shape[1:])} but model '{model.name}' "
            f"takes {expected} per sample (input {tuple(model.inputs[0].shape)})"
        )
    if len(samples) == 0:
        raise ConfigError(f"{what} is empty")
    return samples


def _validation_data(dataset: "Dataset | None", model: LoadedModel, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Labelled evaluation inputs and labels for accuracy-aware quantization."""
    if dataset is None or dataset.y is None:
        raise ConfigError(f"{who} with accuracy_aware needs labelled evaluation data; pass --eval (x and y)")
    return _checked_samples(dataset.x, model, f"evaluation data '{dataset.name}'"), np.asarray(dataset.y)


def _top1_accuracy(compiled: Any, x: np.ndarray, y: np.ndarray, indices: Iterable[int]) -> float:
    """Top-1 accuracy of ``compiled`` (an ov.CompiledModel) on the samples at ``indices``."""
    indices = list(indices)
    if not indices:
        return 0.0
    output = compiled.outputs[0]
    hits = sum(int(np.argmax(compiled([x[i : i + 1]])[output]) == y[i]) for i in indices)
    return hits / len(indices)
