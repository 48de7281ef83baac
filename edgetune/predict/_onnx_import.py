"""Read an ONNX model into the predictor's Graph (``_graph.graph_from_onnx``).

- No-ops (Identity, Dropout, Flatten, Reshape, Squeeze, Unsqueeze) are free: their outputs point at
  what they reshape, and they are never listed.
- Constant subgraphs (shape arithmetic, an initializer's Identity, weights computed from weights) are
  folded by every runtime: free, never listed.
- A channel shuffle (Reshape to 5-D -> Transpose -> Reshape) reads as one "transpose" op with the
  shuffle's groups, on the NCHW shape the first Reshape took apart.
- Add/Mul/Div/Sub: "add"/"mul" on two same-shaped tensors, "scale" on a tensor and a per-channel one
  (squeeze-excite) or a constant; an Add of a constant after a MatMul is that MatMul's bias (one FC).
- Anything else with data inputs becomes an "other" op: costed by estimate and listed as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgetune.errors import ModelError
from edgetune.predict._graph import Graph, Op

_KINDS = {"Relu": "relu", "Clip": "relu6", "HardSwish": "hswish", "Sigmoid": "sigmoid", "HardSigmoid": "hsigmoid",
          "Concat": "concat", "MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "gap",
          "BatchNormalization": "bn", "Resize": "resize", "Upsample": "resize", "Softmax": "softmax",
          "Transpose": "transpose", "Slice": "slice", "Split": "slice", "Pad": "pad"}
FREE_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout")
_BINARY = ("Add", "Mul", "Div", "Sub")


def _load(path: Path) -> Any:
    import onnx
    from onnx import shape_inference

    try:
        return shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for bad files
        raise ModelError(f"cannot read ONNX model {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                         "check the file is a valid ONNX model") from None


class _Reader:
    """The state of one pass over an ONNX graph: shapes, constants, and which op produces each tensor."""

    def __init__(self, model: Any, path: Path) -> None:
        import onnx
        from onnx import numpy_helper

        g = model.graph
        values = list(g.input) + list(g.value_info) + list(g.output)
        self.dims = {v.name: tuple(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim)
                     for v in values}
        self.inits = {i.name: tuple(i.dims) for i in g.initializer}
        self.consts = {n.output[0] for n in g.node if n.op_type == "Constant"}
        self.constants = {i.name: numpy_helper.to_array(i) for i in g.initializer if i.data_type == onnx.TensorProto.INT64}
        self.constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node
                               if n.op_type == "Constant" and n.attribute and n.attribute[0].type == onnx.AttributeProto.TENSOR})
        # integer tensors are shape arithmetic (Shape -> Slice -> Concat for a Resize's sizes), not data
        self.integer = {v.name for v in values if v.type.tensor_type.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)}
        inputs = [i for i in g.input if i.name not in self.inits]
        if len(inputs) != 1:
            raise ModelError(f"{path.name}: the predictor handles single-input models, this one has {len(inputs)} inputs")
        shape = self.dims[inputs[0].name]
        if len(shape) != 4 or -1 in shape:
            raise ModelError(f"{path.name}: the predictor needs a fixed NCHW input shape, got {shape}; re-export with static shapes")
        self.input_shape = (1,) + tuple(int(d) for d in shape[1:])
        self.producer = {inputs[0].name: "input"}  # tensor -> op name in our graph
        self.nchw_of: dict[str, tuple[int, int, int]] = {}  # a reshaped tensor -> the NCHW shape it holds
        self.used: set[str] = set()
        self.ops: list[Op] = []
        self.estimated: list[str] = []

    def nchw(self, tensor: str) -> tuple[int, int, int]:
        if tensor in self.nchw_of:
            return self.nchw_of[tensor]
        d = self.dims.get(tensor, ())
        if len(d) == 4:
            return int(d[1]), int(d[2]), int(d[3])
        if len(d) == 2:
            return int(d[1]), 1, 1
        return (int(np.prod([x for x in d[1:] if x > 0])) if len(d) > 1 else 1), 1, 1

    def elements(self, tensor: str) -> int:
        c, h, w = self.nchw(tensor)
        return c * h * w

    def name_for(self, node: Any, index: int) -> str:
        """The model's own node name where usable (breakdowns read like the model), else a generated one."""
        name = node.name if node.name and node.name not in self.used and node.name != "input" else f"n{index}_{node.op_type}"
        self.used.add(name)
        return name

    def alias(self, node: Any, src: str, data_input: str) -> None:
        """A free op: its outputs are what it reshapes (and keep that NCHW shape when the elements match)."""
        for out in node.output:
            self.producer[out] = src
            if self.elements(out) == self.elements(data_input) and len(self.dims.get(out, ())) != 4:
                self.nchw_of[out] = self.nchw(data_input)

    def add(self, op: Op, node: Any) -> None:
        self.ops.append(op)
        for out in node.output:
            self.producer[out] = op.name
        if op.kind == "transpose":
            self.nchw_of[node.output[0]] = (op.cout, op.hout, op.wout)

    def op_of(self, name: str) -> Optional[Op]:
        return next((op for op in reversed(self.ops) if op.name == name), None)


def read_onnx(path: Path) -> tuple[Graph, list[str]]:
    """(graph, ops read as kind "other") of the ONNX model at ``path``."""
    model = _load(path)
    reader = _Reader(model, path)
    for index, node in enumerate(model.graph.node):
        _read_node(reader, node, index)
    if not reader.ops:
        raise ModelError(f"{path.name}: no operator the predictor knows "
                         f"({', '.join(sorted(set(s.split(':')[0] for s in reader.estimated))) or 'only constants'})")
    return Graph(path.stem, reader.input_shape, tuple(reader.ops)), reader.estimated  # type: ignore[arg-type]


def _read_node(r: _Reader, node: Any, index: int) -> None:
    import onnx

    if node.op_type == "Constant":
        return
    if node.op_type == "Shape" or (node.output and all(o in r.integer for o in node.output)):
        r.consts.update(node.output)
        return
    data = [t for t in node.input if t and t not in r.inits and t not in r.consts]
    srcs = tuple(r.producer[t] for t in data if t in r.producer)
    if not srcs:  # computed from constants only: the runtime folds it
        r.consts.update(node.output)
        return
    if node.op_type in FREE_OPS:
        r.alias(node, srcs[0], data[0])
        return
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    name = r.name_for(node, index)
    cin, hin, win = r.nchw(data[0])
    cout, hout, wout = r.nchw(node.output[0])
    if node.op_type in _BINARY:
        op = _binary(r, node, name, data, srcs)
        if op is None:
            return
    elif node.op_type == "Conv":
        op = _conv(r, node, attrs, name, srcs, (cin, hin, win), (cout, hout, wout))
    elif node.op_type in ("Gemm", "MatMul"):
        op = _matmul(r, node, name, data, srcs)
    elif node.op_type == "ReduceMean" and _reduces_spatial(attrs, node, r.constants, len(r.dims.get(data[0], ()))):
        op = Op(name, "gap", srcs[:1], cin, cout, hin, win, 1, 1, kernel=hin)  # a global average pool (torch's mean)
    elif node.op_type in _KINDS:
        op = _known(r, node, attrs, name, data, srcs, (cin, hin, win), (cout, hout, wout))
    else:
        r.estimated.append(f"{node.op_type}:{node.name or name}")
        op = Op(name, "other", srcs, cin, cout, hin, win, hout, wout)
    r.add(op, node)


def _binary(r: _Reader, node: Any, name: str, data: list[str], srcs: tuple[str, ...]) -> Optional[Op]:
    """Add/Mul/Div/Sub; None when it is a MatMul's bias (the FC before it covers it)."""
    first = r.op_of(srcs[0])
    if len(srcs) == 1:
        if node.op_type in ("Add", "Sub") and first is not None and first.kind == "fc":
            r.producer[node.output[0]] = first.name
            return None
        c, h, w = r.nchw(data[0])
        return Op(name, "scale", srcs, c, c, h, w, h, w)
    a, b = (data[0], data[1]) if r.elements(data[0]) >= r.elements(data[1]) else (data[1], data[0])
    ordered = (r.producer[a], r.producer[b])
    c, h, w = r.nchw(a)
    if r.nchw(a) != r.nchw(b):
        return Op(name, "scale", ordered, c, c, h, w, h, w)
    return Op(name, "add" if node.op_type == "Add" else "mul", ordered, c, c, h, w, h, w)


def _conv(r: _Reader, node: Any, attrs: dict[str, Any], name: str, srcs: tuple[str, ...],
          shape_in: tuple[int, int, int], shape_out: tuple[int, int, int]) -> Op:
    w = r.inits.get(node.input[1]) or r.dims.get(node.input[1], ())
    groups = int(attrs.get("group", 1))
    k = int(w[2]) if len(w) == 4 else int(attrs.get("kernel_shape", [1])[0])
    stride = int(attrs.get("strides", [1])[0])
    (cin, hin, win), (cout, hout, wout) = shape_in, shape_out
    kind = "dwconv" if groups > 1 and groups == cin == cout else "conv"
    return Op(name, kind, srcs[:1], cin, cout, hin, win, hout, wout, k, stride, groups)


def _matmul(r: _Reader, node: Any, name: str, data: list[str], srcs: tuple[str, ...]) -> Op:
    """An FC: features in = the input's last axis, out = the output's, rows = the rest (batch 1)."""
    d_in, d_out = r.dims.get(data[0], ()), r.dims.get(node.output[0], ())
    if len(d_in) < 2 or len(d_out) < 2 or min(d_in[-1], d_out[-1]) < 1:
        cin, cout = r.nchw(data[0])[0], r.nchw(node.output[0])[0]
        return Op(name, "fc", srcs[:1], cin, cout, 1, 1, 1, 1)
    rows = int(np.prod([x for x in d_in[:-1] if x > 0])) if len(d_in) > 2 else 1
    return Op(name, "fc", srcs[:1], int(d_in[-1]), int(d_out[-1]), rows, 1, rows, 1)


def _known(r: _Reader, node: Any, attrs: dict[str, Any], name: str, data: list[str], srcs: tuple[str, ...],
           shape_in: tuple[int, int, int], shape_out: tuple[int, int, int]) -> Op:
    kind = _KINDS[node.op_type]
    (cin, hin, win), (cout, hout, wout) = shape_in, shape_out
    k, stride, groups = 1, 1, 1
    if kind in ("maxpool", "avgpool"):
        k, stride = int(attrs.get("kernel_shape", [1])[0]), int(attrs.get("strides", [1])[0])
    elif kind == "gap":
        k = hin
    elif kind == "transpose":  # a shuffle transposes a (1, groups, C/groups, H, W) view of an NCHW map
        d = r.dims.get(data[0], ())
        groups = int(d[1]) if len(d) == 5 and d[1] > 1 else 1
        cout, hout, wout = cin, hin, win
    elif kind == "slice" and node.op_type == "Split":  # every output is a copy of part of the input
        cout, hout, wout = cin, hin, win
    elif kind == "pad":
        k = max(0, (hout - hin) // 2)
    inputs = srcs if kind == "concat" else srcs[:1]
    return Op(name, kind, inputs, cin, cout, hin, win, hout, wout, k, stride, groups)


def _reduces_spatial(attrs: dict[str, Any], node: Any, constants: dict[str, np.ndarray], rank: int) -> bool:
    """Whether a ReduceMean averages exactly the spatial axes of an NCHW tensor (axes an attribute up to
    opset 17, an input from 18)."""
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1] in constants:
        axes = constants[node.input[1]].tolist()
    return rank == 4 and axes is not None and sorted(int(a) % 4 for a in axes) == [2, 3]
