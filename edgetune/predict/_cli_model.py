"""What `edgetune predict` accepts as MODEL: an ONNX file or a network description (JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Union

from edgetune.errors import ModelError
from edgetune.predict._graph import Graph, graph_from_dict


def model_argument(text: str) -> Union[Graph, Path]:
    """An existing .json network description becomes a Graph; anything else must be an ONNX file."""
    path = Path(text)
    if not path.exists():
        raise ModelError(f"model file '{text}' does not exist; give an .onnx file or a network description .json")
    if path.is_dir():
        raise ModelError(f"'{text}' is a folder; give an .onnx file or a network description .json")
    if path.suffix.lower() == ".json":
        try:
            return graph_from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path} is not valid JSON ({exc.msg})") from None
    if path.suffix.lower() != ".onnx":
        raise ModelError(f"{path.name}: the predictor reads ONNX models (.onnx) or network descriptions (.json); "
                         "export other formats to ONNX first (`edgetune compile` does this for PyTorch)")
    return path
