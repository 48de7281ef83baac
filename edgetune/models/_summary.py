"""Graph summary of an ONNX model: operators, parameters, MACs, input/output shapes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

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


def _shape_map(graph: Any) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _prod(dims: tuple[int, ...]) -> int:
    total = 1
    for d in dims:
        total *= max(d, 0)
    return total


def node_macs(node: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    """Multiply-accumulates of one ONNX node (0 for ops without a weight contraction)."""
    out = shapes.get(node.output[0]) if node.output else None
    if node.op_type in ("Conv", "ConvTranspose", "QLinearConv", "ConvInteger"):
        weight_index = 3 if node.op_type == "QLinearConv" else 1
        weight = shapes.get(node.input[weight_index]) if len(node.input) > weight_index else None
        if not weight or not out or -1 in out:
            return 0
        if node.op_type == "ConvTranspose":
            inp = shapes.get(node.input[0])
            return _prod(inp) * _prod(weight[1:]) if inp and -1 not in inp else 0
        # weight = (Cout, Cin/groups, k...) ; every output element needs Cin/groups * prod(k) MACs
        return _prod(out) * _prod(weight[1:])
    if node.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
        a = shapes.get(node.input[0])
        if not a or not out or -1 in out or -1 in a:
            return 0
        k = a[0] if node.op_type == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute) else a[-1]
        return _prod(out) * k
    return 0


def summarize_onnx(path: Path) -> tuple[dict[str, int], int, int]:
    """Return (op counts, parameter count, MACs) of an ONNX file with static input shapes."""
    import onnx

    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = _shape_map(proto.graph)
    ops = Counter(node.op_type for node in proto.graph.node)
    params = sum(_prod(tuple(init.dims)) for init in proto.graph.initializer)
    macs = sum(node_macs(node, shapes) for node in proto.graph.node)
    return dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))), params, macs


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
