"""Lowerings: one module per transformation, each with declared input and output formats.

Adding a lowering is one module (a ``Lowering`` subclass declaring its options, variants and
formats; see ``_base.py``) and one entry in ``LOWERINGS``: the compile pipeline's candidates,
build sharing and the conformance tests all follow from the registry.
"""

from __future__ import annotations

from edgetune.errors import ConfigError
from edgetune.lowering._base import (
    Artifact,
    CalibrationData,
    CalibrationOptions,
    Lowering,
    LoweringContext,
    LoweringOptions,
    NamedOptions,
    PlanRequest,
    Transport,
    Variant,
    derive,
)
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

# Every lowering, in the order the compile pipeline lists their candidates. The first lowering
# producing a format is its plain one (onnx before the quantizers, tvm before tvm-tuned, ...).
LOWERINGS: tuple[type[Lowering], ...] = (
    OnnxLowering,
    OrtStaticInt8Lowering,
    OrtDynamicInt8Lowering,
    TvmLowering,
    TvmTunedLowering,
    OpenVinoLowering,
    NncfLowering,
    TfliteLowering,
    TfliteFp16Lowering,
    TfliteInt8Lowering,
    TfliteQatInt8Lowering,
    PruneLowering,
    VelaLowering,
    ScaleSimLowering,
    TflmLowering,
)

lowering_registry: dict[str, type[Lowering]] = {cls.name: cls for cls in LOWERINGS}


def get_lowering(name: str) -> Lowering:
    """Return a Lowering by name; an unknown name lists the valid ones."""
    try:
        return lowering_registry[name]()
    except KeyError:
        raise ConfigError(f"unknown lowering '{name}'; valid lowerings: {', '.join(sorted(lowering_registry))}") from None


__all__ = [
    "Artifact",
    "CalibrationData",
    "CalibrationOptions",
    "LOWERINGS",
    "Lowering",
    "LoweringContext",
    "LoweringOptions",
    "NamedOptions",
    "PlanRequest",
    "Transport",
    "Variant",
    "derive",
    "get_lowering",
    "llvm_target",
    "lowering_registry",
]
