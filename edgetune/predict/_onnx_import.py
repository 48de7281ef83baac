"""Read an ONNX model into the predictor's Graph (``_graph.graph_from_onnx``).

Shapes, attributes and conv/pool windows come from the one ONNX reader (``edgetune.models._onnx_graph``).
A 2-D window keeps its full geometry: kernel and stride per axis, pads, dilation.

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
from typing import Any, Mapping, Optional

import numpy as np

from edgetune.errors import ModelError
from edgetune.models._onnx_graph import OnnxGraph, OnnxNode, read_onnx_graph
from edgetune.predict._graph import Graph, Op

_KINDS = {"Relu": "relu", "Clip": "relu6", "HardSwish": "hswish", "Sigmoid": "sigmoid", "HardSigmoid": "hsigmoid",
          "Concat": "concat", "MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "gap",
          "BatchNormalization": "bn", "Resize": "resize", "Upsample": "resize", "Softmax": "softmax",
          "Transpose": "transpose", "Slice": "slice", "Split": "slice", "Pad": "pad"}
FREE_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout")
_BINARY = ("Add", "Mul", "Div", "Sub")


class _Reader:
    """The state of one pass over an ONNX graph: shapes, constants, and which op produces each tensor."""

    def __init__(self, graph: OnnxGraph, path: Path) -> None:
        self.dims = graph.shapes
        self.inits = graph.initializers
        self.consts = {n.outputs[0] for n in graph.nodes if n.op_type == "Constant"}
        self.constants = graph.constants
        # integer tensors are shape arithmetic (Shape -> Slice -> Concat for a Resize's sizes), not data
        self.integer = graph.integer
        if len(graph.inputs) != 1:
            raise ModelError(f"{path.name}: the predictor handles single-input models, this one has {len(graph.inputs)} inputs")
        shape = self.dims[graph.inputs[0]]
        if len(shape) != 4 or -1 in shape:
            raise ModelError(f"{path.name}: the predictor needs a fixed NCHW input shape, got {shape}; re-export with static shapes")
        self.input_shape = (1,) + tuple(int(d) for d in shape[1:])
        self.producer = {graph.inputs[0]: "input"}  # tensor -> op name in our graph
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

    def name_for(self, node: OnnxNode) -> str:
        """The model's own node name where usable (breakdowns read like the model), else a generated one."""
        name = node.name if node.name and node.name not in self.used and node.name != "input" else f"n{node.index}_{node.op_type}"
        self.used.add(name)
        return name

    def alias(self, node: OnnxNode, src: str, data_input: str) -> None:
        """A free op: its outputs are what it reshapes (and keep that NCHW shape when the elements match)."""
        for out in node.outputs:
            self.producer[out] = src
            if self.elements(out) == self.elements(data_input) and len(self.dims.get(out, ())) != 4:
                self.nchw_of[out] = self.nchw(data_input)

    def add(self, op: Op, node: OnnxNode) -> None:
        self.ops.append(op)
        for out in node.outputs:
            self.producer[out] = op.name
        if op.kind == "transpose":
            self.nchw_of[node.outputs[0]] = (op.cout, op.hout, op.wout)

    def op_of(self, name: str) -> Optional[Op]:
        return next((op for op in reversed(self.ops) if op.name == name), None)


def read_onnx(path: Path) -> tuple[Graph, list[str]]:
    """(graph, ops read as kind "other") of the ONNX model at ``path``."""
    onnx_graph = read_onnx_graph(path)
    reader = _Reader(onnx_graph, path)
    for node in onnx_graph.nodes:
        _read_node(reader, node)
    if not reader.ops:
        raise ModelError(f"{path.name}: no operator the predictor knows "
                         f"({', '.join(sorted(set(s.split(':')[0] for s in reader.estimated))) or 'only constants'})")
    return Graph(path.stem, reader.input_shape, tuple(reader.ops)), reader.estimated  # type: ignore[arg-type]


def _read_node(r: _Reader, node: OnnxNode) -> None:
    if node.op_type == "Constant":
        return
    if node.op_type == "Shape" or (node.outputs and all(o in r.integer for o in node.outputs)):
        r.consts.update(node.outputs)
        return
    data = [t for t in node.inputs if t and t not in r.inits and t not in r.consts]
    srcs = tuple(r.producer[t] for t in data if t in r.producer)
    if not srcs:  # computed from constants only: the runtime folds it
        r.consts.update(node.outputs)
        return
    if node.op_type in FREE_OPS:
        r.alias(node, srcs[0], data[0])
        return
    name = r.name_for(node)
    cin, hin, win = r.nchw(data[0])
    cout, hout, wout = r.nchw(node.outputs[0])
    if node.op_type in _BINARY:
        op = _binary(r, node, name, data, srcs)
        if op is None:
            return
    elif node.op_type == "Conv":
        op = _conv(node, name, srcs, (cin, hin, win), (cout, hout, wout))
    elif node.op_type in ("Gemm", "MatMul"):
        op = _matmul(r, node, name, data, srcs)
    elif node.op_type == "ReduceMean" and _reduces_spatial(node, r.constants, len(r.dims.get(data[0], ()))):
        op = Op(name, "gap", srcs[:1], cin, cout, hin, win, 1, 1, kernel=hin)  # a global average pool (torch's mean)
    elif node.op_type in _KINDS:
        op = _known(r, node, name, data, srcs, (cin, hin, win), (cout, hout, wout))
    else:
        r.estimated.append(f"{node.op_type}:{node.name or name}")
        op = Op(name, "other", srcs, cin, cout, hin, win, hout, wout)
    r.add(op, node)


def _binary(r: _Reader, node: OnnxNode, name: str, data: list[str], srcs: tuple[str, ...]) -> Optional[Op]:
    """Add/Mul/Div/Sub; None when it is a MatMul's bias (the FC before it covers it)."""
    first = r.op_of(srcs[0])
    if len(srcs) == 1:
        if node.op_type in ("Add", "Sub") and first is not None and first.kind == "fc":
            r.producer[node.outputs[0]] = first.name
            return None
        c, h, w = r.nchw(data[0])
        return Op(name, "scale", srcs, c, c, h, w, h, w)
    a, b = (data[0], data[1]) if r.elements(data[0]) >= r.elements(data[1]) else (data[1], data[0])
    ordered = (r.producer[a], r.producer[b])
    c, h, w = r.nchw(a)
    if r.nchw(a) != r.nchw(b):
        return Op(name, "scale", ordered, c, c, h, w, h, w)
    return Op(name, "add" if node.op_type == "Add" else "mul", ordered, c, c, h, w, h, w)


def _conv(node: OnnxNode, name: str, srcs: tuple[str, ...], shape_in: tuple[int, int, int],
          shape_out: tuple[int, int, int]) -> Op:
    (cin, hin, win), (cout, hout, wout) = shape_in, shape_out
    kind = "dwconv" if node.group > 1 and node.group == cin == cout else "conv"
    return Op(name, kind, srcs[:1], cin, cout, hin, win, hout, wout, groups=node.group, **_window_fields(node, (hin, win)))


def _window_fields(node: OnnxNode, sizes: tuple[int, int]) -> dict[str, Any]:
    """Op fields of a conv's or pool's window: kernel and stride of the height, and for a 2-D window what
    differs from a square, 'same'-padded, undilated one (width, pads, dilation)."""
    window = node.window
    if window is None:  # a kernel nobody states: a pointwise window, as the model gives no other
        return {"kernel": 1, "stride": int(node.attr("strides", [1])[0])}
    (kh, *rest), (sh, *rest_s) = window.kernel, window.strides
    out: dict[str, Any] = {"kernel": int(kh), "stride": int(sh)}
    if len(window.kernel) != 2:  # 1-D/3-D: the first axis stands for the window, as it always has
        return out
    kw, sw = int(rest[0]), int(rest_s[0])
    top, left, bottom, right = (int(p) for p in window.resolved_pads(sizes))
    pads = (top, left, bottom, right)
    out.update(kernel_w=kw if kw != kh else 0, stride_w=sw if sw != sh else 0,
               pads=pads if pads != (kh // 2, kw // 2, kh // 2, kw // 2) else None,
               dilation=(int(window.dilations[0]), int(window.dilations[1])))
    return out


def _matmul(r: _Reader, node: OnnxNode, name: str, data: list[str], srcs: tuple[str, ...]) -> Op:
    """An FC: features in = the input's last axis, out = the output's, rows = the rest (batch 1)."""
    d_in, d_out = r.dims.get(data[0], ()), r.dims.get(node.outputs[0], ())
    if len(d_in) < 2 or len(d_out) < 2 or min(d_in[-1], d_out[-1]) < 1:
        cin, cout = r.nchw(data[0])[0], r.nchw(node.outputs[0])[0]
        return Op(name, "fc", srcs[:1], cin, cout, 1, 1, 1, 1)
    rows = int(np.prod([x for x in d_in[:-1] if x > 0])) if len(d_in) > 2 else 1
    return Op(name, "fc", srcs[:1], int(d_in[-1]), int(d_out[-1]), rows, 1, rows, 1)


def _known(r: _Reader, node: OnnxNode, name: str, data: list[str], srcs: tuple[str, ...],
           shape_in: tuple[int, int, int], shape_out: tuple[int, int, int]) -> Op:
    kind = _KINDS[node.op_type]
    (cin, hin, win), (cout, hout, wout) = shape_in, shape_out
    k, stride, groups = 1, 1, 1
    if kind in ("maxpool", "avgpool"):
        return Op(name, kind, srcs[:1], cin, cout, hin, win, hout, wout, **_window_fields(node, (hin, win)))
    if kind == "gap":
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


def _reduces_spatial(node: OnnxNode, constants: Mapping[str, np.ndarray], rank: int) -> bool:
    """Whether a ReduceMean averages exactly the spatial axes of an NCHW tensor (axes an attribute up to
    opset 17, an input from 18)."""
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1] in constants:
        axes = constants[node.inputs[1]].tolist()
    return rank == 4 and axes is not None and sorted(int(a) % 4 for a in axes) == [2, 3]
