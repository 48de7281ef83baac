"""What a loaded model is: its source, its ONNX exchange form and its tensors."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence, Union

from edgetune.errors import InputShapeError

SourceFormat = Literal["onnx", "torch", "tflite"]
ShapeArg = Union[Sequence[int], Mapping[str, Sequence[int]], None]

MAX_ELEMENTS = 1 << 28  # bound before allocating inputs: 256M elements (1 GiB of fp32)


@dataclass(frozen=True)
class TensorSpec:
    """Name, static shape and numpy dtype name of a model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class LoadedModel:
    """A model accepted by edgetune, with its ONNX exchange form when one exists."""

    name: str
    source: str
    source_format: SourceFormat
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    onnx_path: Optional[Path] = None
    tflite_path: Optional[Path] = None
    torch_module: Any = field(default=None, repr=False, compare=False)  # torch.nn.Module or ExportedProgram module

    @property
    def formats(self) -> tuple[str, ...]:
        """Formats this model is available in, for choosing lowerings."""
        have = []
        if self.torch_module is not None:
            have.append("torch")
        if self.onnx_path is not None:
            have.append("onnx")
        if self.tflite_path is not None:
            have.append("tflite")
        return tuple(have)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse '1x3x224x224' or '1,3,224,224' into a tuple of positive ints."""
    parts = [p for p in re.split(r"[x,\s]+", text.strip().strip("[]()")) if p]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InputShapeError(
            f"bad input shape '{text}': use dimensions separated by 'x' or ',', e.g. 1x3x224x224"
        ) from None
    check_shape(dims, what=f"input shape '{text}'")
    return dims


def parse_shape_option(values: Sequence[str]) -> ShapeArg:
    """Parse repeated --input-shape values: 'SHAPE' for one input or 'NAME:SHAPE' per input."""
    if not values:
        return None
    named = {}
    for value in values:
        name, sep, shape = value.rpartition(":")
        if not sep:
            if len(values) > 1:
                raise InputShapeError("several --input-shape values must each name their input as NAME:SHAPE")
            return parse_shape(value)
        named[name] = parse_shape(shape)
    return named


def check_shape(dims: Sequence[int], what: str) -> None:
    """Reject empty, non-positive or absurdly large shapes before anything is allocated."""
    if not dims:
        raise InputShapeError(f"{what} is empty; give at least one dimension, e.g. 1x3x224x224")
    if any(d <= 0 for d in dims):
        raise InputShapeError(f"{what} has a non-positive dimension {tuple(dims)}; every dimension must be >= 1")
    elements = 1
    for d in dims:
        elements *= d
    if elements > MAX_ELEMENTS:
        raise InputShapeError(f"{what} {tuple(dims)} has {elements} elements, over the limit of {MAX_ELEMENTS}")
