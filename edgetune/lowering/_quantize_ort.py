"""ONNX Runtime int8 quantization: static QDQ (per-channel weights, calibrated) and dynamic."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgetune._quiet import quiet_fds, quiet_logger
from edgetune.errors import ConfigError, RunnerError, one_line
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
from edgetune.targets import Target

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_CALIB_SAMPLES = 128


def _reader(input_name: str, x: np.ndarray) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _Samples(CalibrationDataReader):  # one sample per call, batch of 1 like the model input
        def __init__(self) -> None:
            self._rows = iter(range(len(x)))

        def get_next(self) -> Optional[dict[str, np.ndarray]]:
            row = next(self._rows, None)
            return None if row is None else {input_name: np.ascontiguousarray(x[row : row + 1], dtype=np.float32)}

    return _Samples()


def _preprocess(source: Path, workdir: Path) -> Path:
    """ORT's recommended pre-processing (shape inference, graph optimization); original on failure."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = workdir / "preprocessed.onnx"
    try:
        quant_pre_process(str(source), str(out), skip_symbolic_shape=True)
        return out
    except Exception:  # pre-processing is an optimization, not a requirement
        return source


@dataclass(frozen=True)
class StaticInt8Options(LoweringOptions):
    """How static int8 is calibrated: the calibration method and how many samples it sees."""

    calib_method: str = "minmax"
    calib_samples: int = DEFAULT_CALIB_SAMPLES

    def __post_init__(self) -> None:
        object.__setattr__(self, "calib_samples", int(self.calib_samples))
        object.__setattr__(self, "calib_method", str(self.calib_method))
        if self.calib_method not in CALIBRATION_METHODS:
            raise ConfigError(f"unknown calibration method '{self.calib_method}'; valid: {', '.join(CALIBRATION_METHODS)}")


class OrtStaticInt8Lowering(Lowering[StaticInt8Options]):
    """QDQ int8 with per-channel symmetric int8 weights and uint8 activations (U8S8, x86-friendly)."""

    name = "ort-int8-static"
    input_format = "onnx"
    output_format = "onnx"
    modules = ("onnxruntime",)
    extra = "all"
    variants = (Variant("onnxruntime", "int8", "static", after=("onnx",)),)

    @classmethod
    def expand(cls, candidates: list[NamedOptions], request: PlanRequest) -> list[NamedOptions]:
        """One candidate per calibration method asked for (named after it when there are several)."""
        methods = request.calib_methods
        return [(f"{name}-{method}" if len(methods) > 1 else name, {**options, "calib_method": method})
                for name, options in candidates for method in methods]

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        calibration = context.checked_calibration(self.name, model)
        options = self.read_options(context)  # an unknown calibration method is a ConfigError
        samples, method = calibration.x[: options.calib_samples], options.calib_method
        start = time.perf_counter()
        source = _preprocess(model.onnx_path, workdir)  # type: ignore[arg-type]
        out = workdir / f"{model.name}.int8-static-{method}.onnx"
        try:
            # the quantizer logs per-node info on the root logger; the percentile/entropy calibrators print progress
            with quiet_logger(), quiet_fds():
                quantize_static(
                    str(source), str(out), _reader(model.inputs[0].name, samples),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                                      "percentile": CalibrationMethod.Percentile}[method],
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
                )
        except Exception as exc:
            raise RunnerError(f"ONNX Runtime static quantization failed: {one_line(exc)}") from None
        return Artifact(out, "onnx", time.perf_counter() - start, {
            "quantization": "static int8 QDQ, per-channel weights (U8S8)",
            "calibration_method": method,
            **context.calibration_details(calibration, samples),
        })


class OrtDynamicInt8Lowering(Lowering):
    """Dynamic int8: weights quantized offline, activations quantized at run time (no calibration)."""

    name = "ort-int8-dynamic"
    input_format = "onnx"
    output_format = "onnx"
    modules = ("onnxruntime",)
    extra = "all"
    variants = (Variant("onnxruntime", "int8", "dynamic", after=("onnx",)),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        start = time.perf_counter()
        source = _preprocess(model.onnx_path, workdir)  # type: ignore[arg-type]
        out = workdir / f"{model.name}.int8-dynamic.onnx"
        try:
            quantize_dynamic(str(source), str(out), per_channel=True, weight_type=QuantType.QInt8)
        except Exception as exc:
            raise RunnerError(f"ONNX Runtime dynamic quantization failed: {one_line(exc)}") from None
        return Artifact(out, "onnx", time.perf_counter() - start, {"quantization": "dynamic int8, per-channel weights"})
