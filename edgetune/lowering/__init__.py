"""Lowerings: one module per transformation, each with declared input and output formats."""

from __future__ import annotations

from edgetune.errors import ConfigError
from edgetune.lowering._base import Artifact, CalibrationData, Lowering, LoweringContext, derive
from edgetune.lowering._onnx import OnnxLowering
from edgetune.lowering._tflite import TfliteLowering
from edgetune.lowering._tvm import TvmLowering, llvm_target

lowering_registry: dict[str, type[Lowering]] = {
    cls.name: cls for cls in (OnnxLowering, TvmLowering, TfliteLowering)
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
