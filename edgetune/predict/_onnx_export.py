"""Write a Graph as a runnable ONNX model with random weights: how kernels and networks are measured.

Every op becomes the ONNX node(s) a PyTorch export would write for it, named after the op (the
runtime's profiler reports nodes by name, which is how in-network costs are attributed back):
a channel shuffle is Reshape -> Transpose -> Reshape with the Transpose carrying the op's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgetune.errors import ConfigError
from edgetune.predict._graph import Graph, Op

_ACTS = {"relu": "Relu", "hswish": "HardSwish", "sigmoid": "Sigmoid", "hsigmoid": "HardSigmoid", "softmax": "Softmax"}


class _Writer:
    """Nodes and initializers of the model being written, and which tensors are rank 2 (after an FC)."""

    def __init__(self, graph: Graph, seed: int) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.graph = graph
        self.rng = np.random.default_rng(seed)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.flat: set[str] = set()  # op outputs of shape (1, C)

    def weight(self, name: str, shape: tuple[int, ...], scale: float = 0.1) -> str:
        array = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(self.numpy_helper.from_array(array, name))
        return name

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(value, name))
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> None:
        self.nodes.append(self.helper.make_node(op_type, inputs, outputs, name=name, **attrs))


def _window(op: Op) -> dict[str, Any]:
    """The ONNX attributes of an op's window: kernel and strides per axis, pads (dilations only when not 1)."""
    attrs: dict[str, Any] = {"kernel_shape": list(op.kernel_hw), "strides": list(op.stride_hw), "pads": list(op.padding)}
    if op.dilation != (1, 1):
        attrs["dilations"] = list(op.dilation)
    return attrs


def _conv(w: _Writer, op: Op, ins: list[str]) -> None:
    fan_in = op.cin // op.groups * op.window_area
    weight = w.weight(f"{op.name}.w", (op.cout, op.cin // op.groups, *op.kernel_hw), scale=(2.0 / fan_in) ** 0.5)
    bias = w.weight(f"{op.name}.b", (op.cout,), 0.01)
    w.node("Conv", [ins[0], weight, bias], [op.name], op.name, group=op.groups, **_window(op))


def _bn(w: _Writer, op: Op, ins: list[str]) -> None:
    c = op.cout
    names = [w.const(f"{op.name}.{s}", v(c)) for s, v in (("scale", lambda n: np.ones(n, np.float32)),
                                                          ("bias", lambda n: np.zeros(n, np.float32)),
                                                          ("mean", lambda n: np.zeros(n, np.float32)),
                                                          ("var", lambda n: np.ones(n, np.float32)))]
    w.node("BatchNormalization", [ins[0], *names], [op.name], op.name)


def _relu6(w: _Writer, op: Op, ins: list[str]) -> None:
    lo = w.const(f"{op.name}.lo", np.array(0.0, np.float32))
    hi = w.const(f"{op.name}.hi", np.array(6.0, np.float32))
    w.node("Clip", [ins[0], lo, hi], [op.name], op.name)


def _activation(w: _Writer, op: Op, ins: list[str]) -> None:
    attrs: dict[str, Any] = {"axis": 1} if op.kind == "softmax" else {}
    if op.kind == "hsigmoid":
        attrs = {"alpha": 1.0 / 6.0, "beta": 0.5}  # PyTorch's Hardsigmoid
    w.node(_ACTS[op.kind], ins[:1], [op.name], op.name, **attrs)


def _swish(w: _Writer, op: Op, ins: list[str]) -> None:
    w.node("Sigmoid", ins[:1], [f"{op.name}.gate"], f"{op.name}.gate")
    w.node("Mul", [ins[0], f"{op.name}.gate"], [op.name], op.name)


def _scale(w: _Writer, op: Op, ins: list[str]) -> None:
    gate = ins[1] if len(ins) > 1 else w.const(f"{op.name}.s", np.full((1, op.cout, 1, 1), 0.5, np.float32))
    w.node("Mul", [ins[0], gate], [op.name], op.name)


def _transpose(w: _Writer, op: Op, ins: list[str]) -> None:
    if op.groups < 2:
        w.node("Transpose", ins[:1], [op.name], op.name, perm=[0, 1, 3, 2])
        return
    split = w.const(f"{op.name}.split_shape", np.array([1, op.groups, op.cin // op.groups, op.hin, op.win], np.int64))
    back = w.const(f"{op.name}.merge_shape", np.array([1, op.cout, op.hout, op.wout], np.int64))
    w.node("Reshape", [ins[0], split], [f"{op.name}.shuffle_in"], f"{op.name}.shuffle_in")
    w.node("Transpose", [f"{op.name}.shuffle_in"], [f"{op.name}.t"], op.name, perm=[0, 2, 1, 3, 4])
    w.node("Reshape", [f"{op.name}.t", back], [op.name], f"{op.name}.shuffle_out")


def _slice(w: _Writer, op: Op, ins: list[str]) -> None:
    names = [w.const(f"{op.name}.{s}", np.array([v], np.int64)) for s, v in (("starts", 0), ("ends", op.cout), ("axes", 1))]
    w.node("Slice", [ins[0], *names], [op.name], op.name)


def _pad(w: _Writer, op: Op, ins: list[str]) -> None:
    p = op.kernel
    pads = w.const(f"{op.name}.pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))
    w.node("Pad", [ins[0], pads], [op.name], op.name, mode="constant")


def _pool(w: _Writer, op: Op, ins: list[str]) -> None:
    w.node("MaxPool" if op.kind == "maxpool" else "AveragePool", ins, [op.name], op.name, **_window(op))


def _resize(w: _Writer, op: Op, ins: list[str]) -> None:
    sizes = w.const(f"{op.name}.sizes", np.array([1, op.cout, op.hout, op.wout], np.int64))
    w.node("Resize", [ins[0], "", "", sizes], [op.name], op.name, mode="linear", coordinate_transformation_mode="half_pixel")


def _fc(w: _Writer, op: Op, ins: list[str]) -> None:
    if op.hout * op.wout != 1:
        raise ConfigError(f"{op.name}: an FC over {op.hout} rows comes from an ONNX MatMul; it is not exported")
    src = ins[0]
    if op.inputs[0] not in w.flat:  # (1, C, 1, 1) from GAP: flatten first
        w.node("Flatten", [src], [f"{op.name}.flat"], f"{op.name}.flat", axis=1)
        src = f"{op.name}.flat"
    weight = w.weight(f"{op.name}.w", (op.cout, op.cin), scale=(1.0 / op.cin) ** 0.5)
    bias = w.weight(f"{op.name}.b", (op.cout,), 0.01)
    w.node("Gemm", [src, weight, bias], [op.name], op.name, transB=1)


def _simple(op_type: str, **attrs: Any) -> Callable[[_Writer, Op, list[str]], None]:
    def emit(w: _Writer, op: Op, ins: list[str]) -> None:
        w.node(op_type, ins, [op.name], op.name, **attrs)
    return emit


_EMITTERS: dict[str, Callable[[_Writer, Op, list[str]], None]] = {
    "conv": _conv, "dwconv": _conv, "bn": _bn, "relu6": _relu6, "relu": _activation, "hswish": _activation,
    "sigmoid": _activation, "hsigmoid": _activation, "swish": _swish, "softmax": _activation, "add": _simple("Add"),
    "mul": _simple("Mul"), "scale": _scale, "concat": _simple("Concat", axis=1), "maxpool": _pool, "avgpool": _pool,
    "gap": _simple("GlobalAveragePool"), "resize": _resize, "flatten": _simple("Flatten", axis=1), "fc": _fc,
    "transpose": _transpose, "slice": _slice, "pad": _pad,
}


def export_onnx(graph: Graph, path: Path, seed: int = 0, opset: int = 17) -> Path:
    """Write ``graph`` as an ONNX model with random weights (``_graph.to_onnx``)."""
    import onnx
    from onnx import TensorProto, helper

    w = _Writer(graph, seed)
    for op in graph.ops:
        emit = _EMITTERS.get(op.kind)
        if emit is None:
            raise ConfigError(f"cannot export op kind '{op.kind}' ({op.name}): it was read from ONNX without a kind")
        emit(w, op, list(op.inputs))
        if op.kind in ("fc", "flatten") or (op.inputs and op.inputs[0] in w.flat and op.kind != "concat"):
            w.flat.add(op.name)
    last = graph.ops[-1]
    out_shape = [1, last.cout] if last.name in w.flat else [1, last.cout, last.hout, last.wout]
    model = helper.make_model(
        helper.make_graph(w.nodes, graph.name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(graph.input_shape))],
                          [helper.make_tensor_value_info(last.name, TensorProto.FLOAT, out_shape)], w.inits),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="edgetune-predict")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
