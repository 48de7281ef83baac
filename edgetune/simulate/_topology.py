"""Lower an ONNX graph to the layers a systolic array executes: conv, depthwise conv, fully connected.

Shapes come from ONNX shape inference, so QDQ-quantized graphs (weights behind
DequantizeLinear) lower the same way as float ones. Everything else (activations, pooling,
adds, reshapes) runs outside the array and is not simulated; ``SystolicLayers.skipped`` counts it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from edgetune.errors import ModelError, UnsupportedOperatorError

MAX_DIM = 1 << 16  # bounds a malformed model before anything is allocated or simulated


@dataclass(frozen=True)
class ArrayLayer:
    """One SCALE-Sim topology row, executed ``repeat`` times (depthwise channels, conv groups).

    ``ifmap_h``/``ifmap_w`` include padding (SCALE-Sim has no padding field). A depthwise
    convolution is one single-channel, single-filter row repeated per channel: what SCALE-Sim's
    own ``DP`` expansion does, without simulating identical channels one by one.
    """

    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filter: int
    stride: int

    @property
    def ofmap_pixels(self) -> int:
        return ((self.ifmap_h - self.filter_h) // self.stride + 1) * ((self.ifmap_w - self.filter_w) // self.stride + 1)

    @property
    def macs(self) -> int:
        return self.ofmap_pixels * self.filter_h * self.filter_w * self.channels * self.num_filter

    def row(self, name: str) -> str:
        return (f"{name},{self.ifmap_h},{self.ifmap_w},{self.filter_h},{self.filter_w},"
                f"{self.channels},{self.num_filter},{self.stride},")


@dataclass(frozen=True)
class NetworkLayer:
    """A layer of the network: its node, kind, the array layer it maps to and how often."""

    node: str
    kind: str  # conv | depthwise | grouped-conv | fc
    shape: ArrayLayer
    repeat: int = 1

    @property
    def macs(self) -> int:
        return self.shape.macs * self.repeat


@dataclass(frozen=True)
class SystolicLayers:
    """The array layers of a network and the operators left to the host."""

    layers: tuple[NetworkLayer, ...]
    skipped: dict[str, int] = field(default_factory=dict)

    def unique_shapes(self) -> list[ArrayLayer]:
        """Distinct array layers in first-seen order: each is simulated once."""
        return list(dict.fromkeys(layer.shape for layer in self.layers))


def _bounded(values: list[int], what: str) -> list[int]:
    if any(v <= 0 or v > MAX_DIM for v in values):
        raise ModelError(f"{what} has a dimension outside 1..{MAX_DIM}: {values}")
    return values


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _shapes(model: Any) -> dict[str, list[int]]:
    graph = model.graph
    shapes: dict[str, list[int]] = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = [d.dim_value for d in dims]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _padded(size: int, kernel: int, stride: int, pads: tuple[int, int], auto_pad: str) -> int:
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = math.ceil(size / stride)
        return max((out - 1) * stride + kernel, size)
    return size + pads[0] + pads[1]


def _conv(node: Any, shapes: dict[str, list[int]]) -> NetworkLayer:
    x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
    if x is None or w is None or len(x) != 4 or len(w) != 4:
        raise UnsupportedOperatorError(f"Conv '{node.name}': only 2-D convolutions with static shapes map to the array")
    _, cin, h, wd = _bounded(x, f"Conv '{node.name}' input")
    cout, cin_per_group, kh, kw = _bounded(w, f"Conv '{node.name}' weight")
    group = int(_attr(node, "group", 1))
    strides = list(_attr(node, "strides", [1, 1]))
    dilations = list(_attr(node, "dilations", [1, 1]))
    pads = list(_attr(node, "pads", [0, 0, 0, 0]))
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if strides[0] != strides[1]:
        raise UnsupportedOperatorError(f"Conv '{node.name}': SCALE-Sim takes one stride, this one has {strides}")
    kh, kw = dilations[0] * (kh - 1) + 1, dilations[1] * (kw - 1) + 1  # a dilated kernel covers this window
    shape = dict(ifmap_h=_padded(h, kh, strides[0], (pads[0], pads[2]), auto_pad),
                 ifmap_w=_padded(wd, kw, strides[1], (pads[1], pads[3]), auto_pad),
                 filter_h=kh, filter_w=kw, stride=int(strides[0]))
    if group == 1:
        return NetworkLayer(node.name, "conv", ArrayLayer(channels=cin, num_filter=cout, **shape))
    if group == cin and cout == cin:
        return NetworkLayer(node.name, "depthwise", ArrayLayer(channels=1, num_filter=1, **shape), repeat=cin)
    return NetworkLayer(node.name, "grouped-conv",
                        ArrayLayer(channels=cin_per_group, num_filter=cout // group, **shape), repeat=group)


def _fully_connected(node: Any, shapes: dict[str, list[int]]) -> Optional[NetworkLayer]:
    a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
    if a is None or b is None or len(b) != 2:
        return None  # activation x activation products have no weights to keep in the array
    trans_a, trans_b = int(_attr(node, "transA", 0)), int(_attr(node, "transB", 0))
    k, n = (b[1], b[0]) if trans_b else (b[0], b[1])
    rows = math.prod(a[:-1]) if not trans_a else a[-1]
    _bounded([rows, k, n], f"{node.op_type} '{node.name}'")
    # a matrix product as a 1x1 convolution over `rows` pixels: SCALE-Sim's usual FC mapping
    return NetworkLayer(node.name, "fc", ArrayLayer(rows, 1, 1, 1, k, n, 1))


def systolic_layers(onnx_path: Path) -> SystolicLayers:
    """The conv / depthwise / FC layers of an ONNX model with their shapes."""
    import onnx

    try:
        model = onnx.load(str(onnx_path))
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise ModelError(f"cannot read '{onnx_path.name}' for SCALE-Sim: {str(exc).splitlines()[0][:200]}") from None
    shapes = _shapes(model)
    layers: list[NetworkLayer] = []
    skipped: Counter[str] = Counter()
    for node in model.graph.node:
        layer: Optional[NetworkLayer] = None
        if node.op_type == "Conv":
            layer = _conv(node, shapes)
        elif node.op_type in ("Gemm", "MatMul"):
            layer = _fully_connected(node, shapes)
        if layer is None:
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear", "Constant"):
                skipped[node.op_type] += 1
            continue
        if layer.shape.filter_h > layer.shape.ifmap_h or layer.shape.filter_w > layer.shape.ifmap_w:
            raise UnsupportedOperatorError(f"{node.op_type} '{node.name}': kernel larger than its padded input")
        layers.append(layer)
    if not layers:
        raise UnsupportedOperatorError(f"'{onnx_path.name}' has no convolution or fully-connected layer for a systolic array")
    return SystolicLayers(tuple(layers), dict(sorted(skipped.items())))
