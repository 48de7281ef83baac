"""A network as a small op graph: what the predictor splits into kernels.

The same graph comes from two places: an ONNX file (``graph_from_onnx``) or a network
description built in code (``GraphBuilder``, used by the search space and the predictor
benchmark), so a candidate network is predicted without exporting it. ``to_onnx`` writes a
graph as a runnable ONNX model (random weights), which is how kernels and benchmark networks
are measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from edgetune.errors import ConfigError, ModelError

# Op kinds the predictor understands. Shape-only ops ("flatten") cost nothing.
COMPUTE_KINDS = ("conv", "dwconv", "fc", "maxpool", "avgpool", "gap", "resize")
ELEMENTWISE_KINDS = ("bn", "relu", "relu6", "hswish", "sigmoid", "add", "concat")
FREE_KINDS = ("flatten",)
OP_KINDS = COMPUTE_KINDS + ELEMENTWISE_KINDS + FREE_KINDS


@dataclass(frozen=True)
class Op:
    """One operator with the shapes that determine its cost (NCHW, batch 1)."""

    name: str
    kind: str
    inputs: tuple[str, ...]  # names of producer ops; "input" is the network input
    cin: int
    cout: int
    hin: int
    win: int
    hout: int
    wout: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1

    @property
    def macs(self) -> int:
        if self.kind in ("conv", "dwconv"):
            return self.hout * self.wout * self.cout * (self.cin // self.groups) * self.kernel * self.kernel
        if self.kind == "fc":
            return self.cin * self.cout
        return 0

    @property
    def params(self) -> int:
        if self.kind in ("conv", "dwconv"):
            return self.cout * (self.cin // self.groups) * self.kernel * self.kernel + self.cout
        if self.kind == "fc":
            return self.cin * self.cout + self.cout
        if self.kind == "bn":
            return 4 * self.cout
        return 0

    @property
    def in_elems(self) -> int:
        return self.cin * self.hin * self.win

    @property
    def out_elems(self) -> int:
        return self.cout * self.hout * self.wout


@dataclass(frozen=True)
class Graph:
    """Ops in topological order; the last op is the output."""

    name: str
    input_shape: tuple[int, int, int, int]
    ops: tuple[Op, ...]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)

    def consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {op.name: [] for op in self.ops}
        out["input"] = []
        for op in self.ops:
            for src in op.inputs:
                out[src].append(op.name)
        return out


@dataclass
class GraphBuilder:
    """Build a Graph layer by layer; every method returns the new op's name.

    >>> b = GraphBuilder("tiny", (1, 3, 32, 32))
    >>> x = b.relu(b.bn(b.conv("input", 16, 3, 2)))
    >>> g = b.build(b.fc(b.gap(x), 10))
    """

    name: str
    input_shape: tuple[int, int, int, int]
    ops: list[Op] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.input_shape) != 4 or self.input_shape[0] != 1 or min(self.input_shape) < 1:
            raise ConfigError(f"network input must be (1, C, H, W) with positive sizes, got {self.input_shape}")
        self._shape: dict[str, tuple[int, int, int]] = {"input": tuple(self.input_shape[1:])}  # type: ignore[dict-item]

    def shape(self, x: str) -> tuple[int, int, int]:
        """(channels, height, width) of an op's output."""
        return self._shape[x]

    def _add(self, kind: str, inputs: Sequence[str], cout: int, hout: int, wout: int,
             kernel: int = 1, stride: int = 1, groups: int = 1) -> str:
        for src in inputs:
            if src not in self._shape:
                raise ConfigError(f"{self.name}: unknown input '{src}'")
        cin, hin, win = self._shape[inputs[0]]
        name = f"{kind}_{len(self.ops)}"
        self.ops.append(Op(name, kind, tuple(inputs), cin, cout, hin, win, hout, wout, kernel, stride, groups))
        self._shape[name] = (cout, hout, wout)
        return name

    def conv(self, x: str, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> str:
        cin, h, w = self._shape[x]
        if cin % groups or cout % groups:
            raise ConfigError(f"{self.name}: channels {cin}->{cout} not divisible by groups {groups}")
        hout, wout = _conv_out(h, kernel, stride), _conv_out(w, kernel, stride)
        kind = "dwconv" if groups > 1 and groups == cin == cout else "conv"
        return self._add(kind, [x], cout, hout, wout, kernel, stride, groups)

    def dwconv(self, x: str, kernel: int = 3, stride: int = 1) -> str:
        cin = self._shape[x][0]
        return self.conv(x, cin, kernel, stride, groups=cin)

    def _same(self, kind: str, x: str) -> str:
        c, h, w = self._shape[x]
        return self._add(kind, [x], c, h, w)

    def bn(self, x: str) -> str:
        return self._same("bn", x)

    def relu(self, x: str) -> str:
        return self._same("relu", x)

    def relu6(self, x: str) -> str:
        return self._same("relu6", x)

    def hswish(self, x: str) -> str:
        return self._same("hswish", x)

    def sigmoid(self, x: str) -> str:
        return self._same("sigmoid", x)

    def act(self, x: str, kind: str) -> str:
        """Apply an activation by name ("relu", "relu6", "hswish", "sigmoid", or "none")."""
        if kind == "none":
            return x
        if kind not in ("relu", "relu6", "hswish", "sigmoid"):
            raise ConfigError(f"unknown activation '{kind}'; valid: relu, relu6, hswish, sigmoid, none")
        return self._same(kind, x)

    def add(self, a: str, b: str) -> str:
        if self._shape[a] != self._shape[b]:
            raise ConfigError(f"{self.name}: add of mismatched shapes {self._shape[a]} and {self._shape[b]}")
        c, h, w = self._shape[a]
        return self._add("add", [a, b], c, h, w)

    def concat(self, xs: Sequence[str]) -> str:
        shapes = [self._shape[x] for x in xs]
        if len({s[1:] for s in shapes}) != 1:
            raise ConfigError(f"{self.name}: concat of mismatched spatial sizes {shapes}")
        return self._add("concat", list(xs), sum(s[0] for s in shapes), shapes[0][1], shapes[0][2])

    def pool(self, x: str, kind: str = "maxpool", kernel: int = 2, stride: int = 2) -> str:
        c, h, w = self._shape[x]
        return self._add(kind, [x], c, _conv_out(h, kernel, stride), _conv_out(w, kernel, stride), kernel, stride)

    def gap(self, x: str) -> str:
        c, h, w = self._shape[x]
        return self._add("gap", [x], c, 1, 1, kernel=h)

    def resize(self, x: str, height: int, width: Optional[int] = None) -> str:
        """Bilinear resize to ``height`` x ``width`` (default square), e.g. a network's input resize."""
        c, _h, _w = self._shape[x]
        if height < 1 or (width is not None and width < 1):
            raise ConfigError(f"{self.name}: resize to a positive size, got {height}x{width}")
        return self._add("resize", [x], c, height, width or height)

    def fc(self, x: str, cout: int) -> str:
        c, h, w = self._shape[x]
        if h * w != 1:
            x = self._add("flatten", [x], c * h * w, 1, 1)
        return self._add("fc", [x], cout, 1, 1)

    def build(self, output: Optional[str] = None) -> Graph:
        if not self.ops:
            raise ConfigError(f"{self.name}: a network needs at least one op")
        if output is not None and output != self.ops[-1].name:
            raise ConfigError(f"{self.name}: the output must be the last op added")
        return Graph(self.name, tuple(self.input_shape), tuple(self.ops))  # type: ignore[arg-type]


def _conv_out(size: int, kernel: int, stride: int) -> int:
    """Output size of a 'same'-padded (pad = kernel // 2) window; pooling uses the same rule."""
    return max(1, (size + 2 * (kernel // 2) - kernel) // stride + 1)


# --- ONNX export -----------------------------------------------------------------------------

def to_onnx(graph: Graph, path: Path, seed: int = 0, opset: int = 17) -> Path:
    """Write ``graph`` as an ONNX model with random weights (for measuring it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes: list[Any] = []
    inits: list[Any] = []

    def weight(name: str, shape: tuple[int, ...], scale: float = 0.1) -> str:
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    out_of = {"input": "input"}
    for op in graph.ops:
        ins = [out_of[i] for i in op.inputs]
        out = op.name
        if op.kind in ("conv", "dwconv"):
            k = op.kernel
            w = weight(f"{op.name}.w", (op.cout, op.cin // op.groups, k, k), scale=(2.0 / (op.cin // op.groups * k * k)) ** 0.5)
            b = weight(f"{op.name}.b", (op.cout,), 0.01)
            nodes.append(helper.make_node("Conv", [ins[0], w, b], [out], kernel_shape=[k, k], strides=[op.stride] * 2,
                                          pads=[k // 2] * 4, group=op.groups, name=op.name))
        elif op.kind == "bn":
            c = op.cout
            scale = numpy_helper.from_array(np.ones(c, np.float32), f"{op.name}.scale")
            inits.extend([scale, numpy_helper.from_array(np.zeros(c, np.float32), f"{op.name}.bias"),
                          numpy_helper.from_array(np.zeros(c, np.float32), f"{op.name}.mean"),
                          numpy_helper.from_array(np.ones(c, np.float32), f"{op.name}.var")])
            nodes.append(helper.make_node("BatchNormalization", [ins[0]] + [f"{op.name}.{s}" for s in ("scale", "bias", "mean", "var")], [out],
                                          name=op.name))
        elif op.kind == "relu":
            nodes.append(helper.make_node("Relu", ins, [out], name=op.name))
        elif op.kind == "relu6":
            inits.extend([numpy_helper.from_array(np.array(0.0, np.float32), f"{op.name}.lo"),
                          numpy_helper.from_array(np.array(6.0, np.float32), f"{op.name}.hi")])
            nodes.append(helper.make_node("Clip", [ins[0], f"{op.name}.lo", f"{op.name}.hi"], [out], name=op.name))
        elif op.kind == "hswish":
            nodes.append(helper.make_node("HardSwish", ins, [out], name=op.name))
        elif op.kind == "sigmoid":
            nodes.append(helper.make_node("Sigmoid", ins, [out], name=op.name))
        elif op.kind == "add":
            nodes.append(helper.make_node("Add", ins, [out], name=op.name))
        elif op.kind == "concat":
            nodes.append(helper.make_node("Concat", ins, [out], name=op.name, axis=1))
        elif op.kind in ("maxpool", "avgpool"):
            nodes.append(helper.make_node("MaxPool" if op.kind == "maxpool" else "AveragePool", ins, [out], name=op.name,
                                          kernel_shape=[op.kernel] * 2, strides=[op.stride] * 2, pads=[op.kernel // 2] * 4))
        elif op.kind == "gap":
            nodes.append(helper.make_node("GlobalAveragePool", ins, [out], name=op.name))
        elif op.kind == "resize":
            inits.append(numpy_helper.from_array(np.array([1, op.cout, op.hout, op.wout], np.int64), f"{op.name}.sizes"))
            nodes.append(helper.make_node("Resize", [ins[0], "", "", f"{op.name}.sizes"], [out], name=op.name, mode="linear",
                                          coordinate_transformation_mode="half_pixel"))
        elif op.kind == "flatten":
            nodes.append(helper.make_node("Flatten", ins, [out], name=op.name, axis=1))
        elif op.kind == "fc":
            src = ins[0]
            if len(_shape_rank(graph, op.inputs[0])) != 2:  # (1, C, 1, 1) from GAP: flatten first
                nodes.append(helper.make_node("Flatten", [src], [f"{op.name}.flat"], name=f"{op.name}.flat", axis=1))
                src = f"{op.name}.flat"
            w = weight(f"{op.name}.w", (op.cout, op.cin), scale=(1.0 / op.cin) ** 0.5)
            b = weight(f"{op.name}.b", (op.cout,), 0.01)
            nodes.append(helper.make_node("Gemm", [src, w, b], [out], name=op.name, transB=1))
        else:  # pragma: no cover - OP_KINDS is closed
            raise ConfigError(f"cannot export op kind '{op.kind}'")
        out_of[op.name] = out
    last = graph.ops[-1]
    out_shape = [1, last.cout] if last.kind in ("fc", "flatten") else [1, last.cout, last.hout, last.wout]
    model = helper.make_model(
        helper.make_graph(nodes, graph.name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(graph.input_shape))],
                          [helper.make_tensor_value_info(last.name, TensorProto.FLOAT, out_shape)], inits),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="edgetune-predict")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _shape_rank(graph: Graph, name: str) -> tuple[int, ...]:
    """Rank-ish of an op's output: flatten and fc produce (1, C); everything else NCHW."""
    if name == "input":
        return (1, 1, 1, 1)
    op = next(o for o in graph.ops if o.name == name)
    return (1, 1) if op.kind in ("fc", "flatten") else (1, 1, 1, 1)


# --- ONNX import -----------------------------------------------------------------------------

_ONNX_KINDS = {"Relu": "relu", "Clip": "relu6", "HardSwish": "hswish", "Sigmoid": "sigmoid", "Add": "add",
               "Concat": "concat", "MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "gap",
               "BatchNormalization": "bn", "Resize": "resize", "Upsample": "resize", "Flatten": "flatten",
               "Reshape": "flatten", "Squeeze": "flatten", "Identity": "flatten", "Dropout": "flatten"}


def graph_from_onnx(path: Path) -> tuple[Graph, list[str]]:
    """Read an ONNX model into a Graph; returns (graph, names of ops it could not represent).

    Unrepresented ops (anything outside OP_KINDS) are left out of the graph and listed, so a
    prediction can say which parts of the model it did not cover.
    """
    import onnx
    from onnx import numpy_helper, shape_inference

    try:
        model = shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for bad files
        raise ModelError(f"cannot read ONNX model {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                         "check the file is a valid ONNX model") from None
    g = model.graph
    dims: dict[str, tuple[int, ...]] = {}
    for value in list(g.input) + list(g.value_info) + list(g.output):
        dims[value.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)
    inits = {i.name: tuple(i.dims) for i in g.initializer}
    consts = {n.output[0] for n in g.node if n.op_type == "Constant"}
    constants = {i.name: numpy_helper.to_array(i) for i in g.initializer if i.data_type == onnx.TensorProto.INT64}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].type == onnx.AttributeProto.TENSOR})
    # integer tensors are shape arithmetic (Shape -> Slice -> Concat for a Resize's sizes), not data
    integer = {v.name for v in list(g.input) + list(g.value_info) + list(g.output)
               if v.type.tensor_type.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)}
    graph_inputs = [i for i in g.input if i.name not in inits]
    if len(graph_inputs) != 1:
        raise ModelError(f"{path.name}: the predictor handles single-input models, this one has {len(graph_inputs)} inputs")
    in_name = graph_inputs[0].name
    in_shape = dims[in_name]
    if len(in_shape) != 4 or -1 in in_shape:
        raise ModelError(f"{path.name}: the predictor needs a fixed NCHW input shape, got {in_shape}; re-export with static shapes")
    in_shape = (1,) + tuple(in_shape[1:])
    producer = {in_name: "input"}  # tensor -> op name in our graph
    used: set[str] = set()
    ops: list[Op] = []
    skipped: list[str] = []

    def nchw(tensor: str) -> tuple[int, int, int]:
        d = dims.get(tensor, ())
        if len(d) == 4:
            return int(d[1]), int(d[2]), int(d[3])
        if len(d) == 2:
            return int(d[1]), 1, 1
        return (int(np.prod([x for x in d[1:] if x > 0])) if len(d) > 1 else 1), 1, 1

    for i, node in enumerate(g.node):
        if node.op_type == "Constant":
            continue
        if node.op_type == "Shape" or (node.output and all(o in integer for o in node.output)):
            consts.update(node.output)
            continue
        data_inputs = [t for t in node.input if t and t not in inits and t not in consts]
        srcs = tuple(producer[t] for t in data_inputs if t in producer)
        if not srcs:
            skipped.append(f"{node.op_type}:{node.name}")
            continue
        cin, hin, win = nchw(data_inputs[0])
        cout, hout, wout = nchw(node.output[0])
        # the model's own node names where they are usable (breakdowns read like the model), else generated
        name = node.name if node.name and node.name not in used and node.name != "input" else f"n{i}_{node.op_type}"
        used.add(name)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            w = inits.get(node.input[1]) or dims.get(node.input[1], ())
            groups = int(attrs.get("group", 1))
            k = int(w[2]) if len(w) == 4 else int(attrs.get("kernel_shape", [1])[0])
            stride = int(attrs.get("strides", [1])[0])
            kind = "dwconv" if groups > 1 and groups == cin == cout else "conv"
            op = Op(name, kind, srcs, cin, cout, hin, win, hout, wout, k, stride, groups)
        elif node.op_type in ("Gemm", "MatMul"):
            op = Op(name, "fc", srcs[:1], cin, cout, 1, 1, 1, 1)
        elif node.op_type == "ReduceMean" and _reduces_spatial(attrs, node, constants, len(dims.get(data_inputs[0], ()))):
            op = Op(name, "gap", srcs[:1], cin, cout, hin, win, 1, 1, kernel=hin)  # a global average pool (torch's mean)
        elif node.op_type in _ONNX_KINDS:
            kind = _ONNX_KINDS[node.op_type]
            k = int(attrs.get("kernel_shape", [1])[0]) if kind in ("maxpool", "avgpool") else (hin if kind == "gap" else 1)
            stride = int(attrs.get("strides", [1])[0]) if kind in ("maxpool", "avgpool") else 1
            if kind == "add" and len(srcs) == 1:  # add of a constant (bias): elementwise on one input
                kind = "bn"
            op = Op(name, kind, srcs if kind in ("add", "concat") else srcs[:1], cin, cout, hin, win, hout, wout, k, stride)
        else:
            skipped.append(f"{node.op_type}:{node.name or name}")
            for out in node.output:  # keep the data flow connected through the op we cannot cost
                producer[out] = srcs[0]
            continue
        ops.append(op)
        for out in node.output:
            producer[out] = name
    if not ops:
        raise ModelError(f"{path.name}: no operator the predictor knows ({', '.join(sorted(set(s.split(':')[0] for s in skipped)))})")
    return Graph(path.stem, in_shape, tuple(ops)), skipped  # type: ignore[arg-type]


def _reduces_spatial(attrs: dict[str, Any], node: Any, constants: dict[str, np.ndarray], rank: int) -> bool:
    """Whether a ReduceMean averages exactly the spatial axes of an NCHW tensor (axes an attribute up to
    opset 17, an input from 18)."""
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1] in constants:
        axes = constants[node.input[1]].tolist()
    return rank == 4 and axes is not None and sorted(int(a) % 4 for a in axes) == [2, 3]


# --- plain-data form (JSON) ----------------------------------------------------------------

_OP_FIELDS = ("name", "kind", "inputs", "cin", "cout", "hin", "win", "hout", "wout", "kernel", "stride", "groups")


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """A JSON-ready description of ``graph`` (ops as lists, in _OP_FIELDS order)."""
    return {"name": graph.name, "input_shape": list(graph.input_shape),
            "ops": [[getattr(op, f) if f != "inputs" else list(op.inputs) for f in _OP_FIELDS] for op in graph.ops]}


def graph_from_dict(data: dict[str, Any]) -> Graph:
    """Inverse of graph_to_dict."""
    try:
        ops = tuple(Op(**{f: (tuple(v) if f == "inputs" else v) for f, v in zip(_OP_FIELDS, row)}) for row in data["ops"])
        return Graph(str(data["name"]), tuple(int(d) for d in data["input_shape"]), ops)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"not a network description ({exc}); expected keys name, input_shape, ops") from None
