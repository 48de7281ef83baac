"""Graph summary of an ONNX model: operators, parameters, MACs, input/output shapes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from edgetune.models._onnx_graph import read_onnx_graph
from edgetune.models._spec import LoadedModel, TensorSpec


@dataclass(frozen=True)
class ModelSummary:
    """What an engineer asks about a model before deploying it."""

    name: str
    source_format: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    op_counts: dict[str, int]
    params: int
    macs: int
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source_format": self.source_format,
            "sha256": self.sha256,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "op_counts": dict(self.op_counts),
            "params": self.params,
            "macs": self.macs,
            "size_bytes": self.size_bytes,
        }


def summarize_onnx(path: Path) -> tuple[dict[str, int], int, int]:
    """Return (op counts, parameter count, MACs) of an ONNX file with static input shapes."""
    graph = read_onnx_graph(path)
    return graph.op_counts(), graph.params, graph.macs


def summarize_tflite(path: Path) -> dict[str, int]:
    """Op counts of a TFLite model read through LiteRT's op details."""
    from edgetune._lazy import require

    interp = require("ai_edge_litert.interpreter", "litert").Interpreter(model_path=str(path))
    try:
        details = interp._get_ops_details()  # noqa: SLF001 - LiteRT's only op listing
    except AttributeError:
        return {}
    return dict(Counter(d["op_name"] for d in details))


def summarize(model: LoadedModel) -> ModelSummary:
    """Summarize a loaded model from its ONNX form (or TFLite op list when there is no ONNX)."""
    op_counts: dict[str, int] = {}
    params = macs = 0
    file: Optional[Path] = model.onnx_path or model.tflite_path
    if model.onnx_path is not None:
        op_counts, params, macs = summarize_onnx(model.onnx_path)
    elif model.tflite_path is not None:
        op_counts = summarize_tflite(model.tflite_path)
    return ModelSummary(
        name=model.name,
        source_format=model.source_format,
        sha256=model.sha256,
        inputs=model.inputs,
        outputs=model.outputs,
        op_counts=op_counts,
        params=params,
        macs=macs,
        size_bytes=file.stat().st_size if file else 0,
    )
