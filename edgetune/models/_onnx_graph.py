"""Read an ONNX model once: load, shape inference, then one typed record per node.

The model summary (operators, parameters, MACs), the predictor's graph import and the SCALE-Sim
topology all read ONNX through ``read_onnx_graph``, so they agree on tensor shapes, on a window's
geometry (kernel per axis, strides, pads, dilations, group) and on what a node's MACs are.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from edgetune.errors import ModelError, one_line

Shape = tuple[int, ...]  # a tensor's dimensions; -1 where shape inference left one unknown

CONV_OPS = ("Conv", "ConvTranspose", "QLinearConv", "ConvInteger")
POOL_OPS = ("MaxPool", "AveragePool", "LpPool")
MATMUL_OPS = ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")


@dataclass(frozen=True)
class Window:
    """A convolution's or pool's sliding window over the spatial axes, as the ONNX attributes give it.

    Every field holds one value per spatial axis (height first), except ``pads``: the begin of every
    axis, then the end (ONNX order; in 2-D: top, left, bottom, right).
    """

    kernel: Shape
    strides: Shape
    pads: Shape
    dilations: Shape
    auto_pad: str = "NOTSET"

    @property
    def extent(self) -> Shape:
        """Input pixels one window covers per axis: a dilated kernel spreads over ``d * (k - 1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilations))

    def resolved_pads(self, sizes: Shape) -> Shape:
        """The pads on an input of spatial ``sizes`` (begins, then ends); ``SAME_*`` derives them from the output size."""
        if self.auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
            return self.pads
        totals = [max((math.ceil(n / s) - 1) * s + e - n, 0) for n, s, e in zip(sizes, self.strides, self.extent)]
        small = [t // 2 for t in totals]
        large = [t - t // 2 for t in totals]
        return tuple(small + large) if self.auto_pad == "SAME_UPPER" else tuple(large + small)

    def padded(self, sizes: Shape) -> Shape:
        """The input's spatial sizes with its padding added."""
        pads, rank = self.resolved_pads(sizes), len(sizes)
        return tuple(n + pads[i] + pads[rank + i] for i, n in enumerate(sizes))


@dataclass(frozen=True)
class OnnxNode:
    """One node: its operator, tensors and their inferred shapes (None: unknown), attributes and MACs."""

    index: int
    name: str
    op_type: str
    inputs: tuple[str, ...]  # as the model lists them ("" for an omitted optional input)
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]  # every attribute, decoded (strings as str)
    input_shapes: tuple[Optional[Shape], ...]
    output_shapes: tuple[Optional[Shape], ...]
    window: Optional[Window]  # Conv*/pools whose kernel is known; None for other operators
    group: int
    macs: int  # multiply-accumulates of a weight contraction (Conv*, Gemm/MatMul*); 0 for the rest

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)


@dataclass(frozen=True)
class OnnxGraph:
    """A shape-inferred ONNX model: nodes in the model's order and what they need to be understood."""

    name: str
    nodes: tuple[OnnxNode, ...]
    shapes: Mapping[str, Shape]  # graph inputs/outputs, inferred intermediates and initializers
    initializers: Mapping[str, Shape]
    inputs: tuple[str, ...]  # the graph inputs that are not initializers
    constants: Mapping[str, np.ndarray]  # int64 initializers' and Constant nodes' values (shape arithmetic, axes)
    integer: frozenset[str]  # int32/int64 tensors: shape arithmetic, not data
    params: int

    @property
    def macs(self) -> int:
        return sum(node.macs for node in self.nodes)

    def op_counts(self) -> dict[str, int]:
        """Nodes per operator, most frequent first."""
        counts = Counter(node.op_type for node in self.nodes)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def static_shape(self, tensor: str) -> Optional[Shape]:
        """The tensor's shape when every dimension is known (and it has some), else None."""
        shape = self.shapes.get(tensor)
        if shape is None or (not shape and tensor not in self.initializers) or any(d < 0 for d in shape):
            return None
        return shape


def read_onnx_graph(path: Path, *, check: bool = False, purpose: str = "") -> OnnxGraph:
    """Load the ONNX model at ``path`` (checked first with ``check``), infer its shapes and read every node.

    A file that does not load is a one-line ModelError; ``purpose`` ("for SCALE-Sim") says what read it.
    """
    import onnx

    try:
        proto = onnx.load(str(path))
        if check:
            onnx.checker.check_model(proto)
        proto = onnx.shape_inference.infer_shapes(proto)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValidationError, InferenceError, OSError...
        what = f"{path} {purpose}" if purpose else str(path)
        raise ModelError(f"cannot read ONNX model {what}: {one_line(exc, 200)}; check the file is a valid ONNX model") from None
    return _graph_of(proto.graph, Path(path).stem)


def _graph_of(graph: Any, name: str) -> OnnxGraph:
    import onnx
    from onnx import numpy_helper

    values = list(graph.input) + list(graph.value_info) + list(graph.output)
    initializers = {init.name: tuple(int(d) for d in init.dims) for init in graph.initializer}
    shapes: dict[str, Shape] = {v.name: _dims(v) for v in values}
    shapes.update(initializers)
    int64 = onnx.TensorProto.INT64  # only shape arithmetic and axes are read by value: weights are never copied
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.data_type == int64}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].type == onnx.AttributeProto.TENSOR
                      and n.attribute[0].t.data_type == int64})
    integer = frozenset(v.name for v in values
                        if v.type.tensor_type.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32))
    nodes = tuple(_node(index, node, shapes) for index, node in enumerate(graph.node))
    return OnnxGraph(name=name, nodes=nodes, shapes=shapes, initializers=initializers,
                     inputs=tuple(i.name for i in graph.input if i.name not in initializers), constants=constants,
                     integer=integer, params=sum(_prod(dims) for dims in initializers.values()))


def _dims(value: Any) -> Shape:
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)


def _node(index: int, node: Any, shapes: Mapping[str, Shape]) -> OnnxNode:
    from onnx import helper

    attrs = {a.name: _decoded(helper.get_attribute_value(a)) for a in node.attribute}
    ins = tuple(shapes.get(t) if t else None for t in node.input)
    outs = tuple(shapes.get(t) for t in node.output)
    return OnnxNode(index=index, name=node.name, op_type=node.op_type, inputs=tuple(node.input), outputs=tuple(node.output),
                    attrs=attrs, input_shapes=ins, output_shapes=outs, window=_window(node.op_type, attrs, ins),
                    group=int(attrs.get("group", 1)), macs=_macs(node.op_type, attrs, ins, outs))


def _decoded(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _window(op_type: str, attrs: Mapping[str, Any], ins: tuple[Optional[Shape], ...]) -> Optional[Window]:
    """The window of a conv (kernel from its weight where known) or pool; None for other ops or an unknown kernel."""
    if op_type not in CONV_OPS and op_type not in POOL_OPS:
        return None
    weight = ins[3 if op_type == "QLinearConv" else 1] if op_type in CONV_OPS and len(ins) > 1 else None
    if weight is not None and len(weight) >= 3 and min(weight[2:]) > 0:
        kernel: Shape = tuple(weight[2:])
    elif attrs.get("kernel_shape"):
        kernel = tuple(int(k) for k in attrs["kernel_shape"])
    else:
        return None
    rank = len(kernel)
    return Window(kernel=kernel, strides=tuple(int(s) for s in attrs.get("strides", [1] * rank)),
                  pads=tuple(int(p) for p in attrs.get("pads", [0] * 2 * rank)),
                  dilations=tuple(int(d) for d in attrs.get("dilations", [1] * rank)),
                  auto_pad=str(attrs.get("auto_pad", "NOTSET")))


def _prod(dims: Shape) -> int:
    total = 1
    for d in dims:
        total *= max(d, 0)
    return total


def _macs(op_type: str, attrs: Mapping[str, Any], ins: tuple[Optional[Shape], ...], outs: tuple[Optional[Shape], ...]) -> int:
    """Multiply-accumulates of one node (0 for ops without a weight contraction or with unknown shapes)."""
    out = outs[0] if outs else None
    if op_type in CONV_OPS:
        index = 3 if op_type == "QLinearConv" else 1
        weight = ins[index] if len(ins) > index else None
        if not weight or not out or -1 in out:
            return 0
        if op_type == "ConvTranspose":
            inp = ins[0]
            return _prod(inp) * _prod(weight[1:]) if inp and -1 not in inp else 0
        # weight = (Cout, Cin/groups, k...): every output element needs Cin/groups * prod(k) MACs
        return _prod(out) * _prod(weight[1:])
    if op_type in MATMUL_OPS:
        a = ins[0] if ins else None
        if not a or not out or -1 in out or -1 in a:
            return 0
        return _prod(out) * (a[0] if op_type == "Gemm" and attrs.get("transA") else a[-1])
    return 0
