"""Lowerings: one module per transformation, each with declared input and output formats."""

from __future__ import annotations

from edgetune.errors import ConfigError
from edgetune.lowering._base import Artifact, CalibrationData, Lowering, LoweringContext, derive
from edgetune.lowering._onnx import OnnxLowering
from edgetune.lowering._openvino import NncfLowering, OpenVinoLowering
from edgetune.lowering._prune import PruneLowering
from edgetune.lowering._quantize_ort import OrtDynamicInt8Lowering, OrtStaticInt8Lowering
from edgetune.lowering._scalesim import ScaleSimLowering
from edgetune.lowering._tflite import TfliteFp16Lowering, TfliteInt8Lowering, TfliteLowering, TfliteQatInt8Lowering
from edgetune.lowering._tflm import TflmLowering
from edgetune.lowering._tvm import TvmLowering, llvm_target
from edgetune.lowering._tvm_tune import TvmTunedLowering
from edgetune.lowering._vela import VelaLowering

lowering_registry: dict[str, type[Lowering]] = {
    cls.name: cls for cls in (OnnxLowering, OrtStaticInt8Lowering, OrtDynamicInt8Lowering, TvmLowering, TvmTunedLowering, TfliteLowering, TfliteInt8Lowering, TfliteQatInt8Lowering, TfliteFp16Lowering, PruneLowering, OpenVinoLowering, NncfLowering, VelaLowering, ScaleSimLowering, TflmLowering)
}


def get_lowering(name: str) -> Lowering:
    """Return a Lowering by name; an unknown name lists the valid ones."""
    try:
        return lowering_registry[name]()
    except KeyError:
        raise ConfigError(f"unknown lowering '{name}'; valid lowerings: {', '.join(sorted(lowering_registry))}") from None


__all__ = [
    "Artifact",
    "CalibrationData",
    "Lowering",
    "LoweringContext",
    "derive",
    "get_lowering",
    "llvm_target",
    "lowering_registry",
]
