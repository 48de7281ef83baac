"""Lower an ONNX graph to the layers a systolic array executes: conv, depthwise conv, fully connected.

Shapes come from ONNX shape inference (``edgetune.models._onnx_graph``), so QDQ-quantized graphs (weights behind
DequantizeLinear) lower the same way as float ones. Everything else (activations, pooling,
adds, reshapes) runs outside the array and is not simulated; ``SystolicLayers.skipped`` counts it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from edgetune.errors import ModelError, UnsupportedOperatorError
from edgetune.models._onnx_graph import OnnxGraph, OnnxNode, read_onnx_graph

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


def _conv(node: OnnxNode, graph: OnnxGraph) -> NetworkLayer:
    x, w = graph.static_shape(node.inputs[0]), graph.static_shape(node.inputs[1])
    if x is None or w is None or len(x) != 4 or len(w) != 4:
        raise UnsupportedOperatorError(f"Conv '{node.name}': only 2-D convolutions with static shapes map to the array")
    _, cin, h, wd = _bounded(list(x), f"Conv '{node.name}' input")
    cout = _bounded(list(w), f"Conv '{node.name}' weight")[0]
    window = node.window
    if window is None:  # unreachable: a 4-D weight with positive sizes gives the kernel
        raise UnsupportedOperatorError(f"Conv '{node.name}': no kernel shape")
    if window.strides[0] != window.strides[1]:
        raise UnsupportedOperatorError(f"Conv '{node.name}': SCALE-Sim takes one stride, this one has {list(window.strides)}")
    kind, layer, repeat = conv_array_layer(cin, cout, node.group, window.padded((h, wd)), window.extent, window.strides[0])
    return NetworkLayer(node.name, kind, layer, repeat)


def conv_array_layer(cin: int, cout: int, groups: int, ifmap: tuple[int, ...], window: tuple[int, ...],
                     stride: int) -> tuple[str, ArrayLayer, int]:
    """(kind, array layer, repeats) of a 2-D convolution: the mapping the topology and the predictor share.

    ``ifmap`` is the padded input (height, width), ``window`` the (dilated) kernel's extent.
    """
    shape = dict(ifmap_h=int(ifmap[0]), ifmap_w=int(ifmap[1]), filter_h=int(window[0]), filter_w=int(window[1]),
                 stride=int(stride))
    if groups == 1:
        return "conv", ArrayLayer(channels=cin, num_filter=cout, **shape), 1
    if groups == cin and cout == cin:  # one single-channel filter per channel
        return "depthwise", ArrayLayer(channels=1, num_filter=1, **shape), cin
    return "grouped-conv", ArrayLayer(channels=cin // groups, num_filter=cout // groups, **shape), groups


def _fully_connected(node: OnnxNode, graph: OnnxGraph) -> Optional[NetworkLayer]:
    a, b = graph.static_shape(node.inputs[0]), graph.static_shape(node.inputs[1])
    if a is None or b is None or len(b) != 2:
        return None  # activation x activation products have no weights to keep in the array
    trans_a, trans_b = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    k, n = (b[1], b[0]) if trans_b else (b[0], b[1])
    rows = math.prod(a[:-1]) if not trans_a else a[-1]
    _bounded([rows, k, n], f"{node.op_type} '{node.name}'")
    # a matrix product as a 1x1 convolution over `rows` pixels: SCALE-Sim's usual FC mapping
    return NetworkLayer(node.name, "fc", ArrayLayer(rows, 1, 1, 1, k, n, 1))


def systolic_layers(onnx_path: Path) -> SystolicLayers:
    """The conv / depthwise / FC layers of an ONNX model with their shapes."""
    graph = read_onnx_graph(onnx_path, check=True, purpose="for SCALE-Sim")
    layers: list[NetworkLayer] = []
    skipped: Counter[str] = Counter()
    for node in graph.nodes:
        layer: Optional[NetworkLayer] = None
        if node.op_type == "Conv":
            layer = _conv(node, graph)
        elif node.op_type in ("Gemm", "MatMul"):
            layer = _fully_connected(node, graph)
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
