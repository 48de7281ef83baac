"""A network as a small op graph: what the predictor splits into kernels.

The same graph comes from two places: an ONNX file (``graph_from_onnx``) or a network
description built in code (``GraphBuilder``, used by the search space and the predictor
benchmark), so a candidate network is predicted without exporting it. ``to_onnx`` writes a
graph as a runnable ONNX model (random weights), which is how kernels and benchmark networks
are measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from edgetune.errors import ConfigError, ModelError

# Op kinds the predictor understands. Shape-only ops ("flatten") cost nothing; "other" is an operator
# read from ONNX that no kind describes: it is costed by estimate (``_estimate``) and marked so.
COMPUTE_KINDS = ("conv", "dwconv", "fc", "maxpool", "avgpool", "gap", "resize", "softmax")
# "mul": Mul/Div/Sub of two same-shaped tensors; "scale": a tensor times (or plus) a per-channel or
# scalar one -- a squeeze-excite gate, a constant -- broadcast over its pixels
# "swish": x * sigmoid(x) (SiLU), one op: ONNX Runtime runs the pair as one QuickGelu kernel, OpenVINO as Swish
ELEMENTWISE_KINDS = ("bn", "relu", "relu6", "hswish", "sigmoid", "hsigmoid", "add", "concat", "mul", "scale", "swish")
# data movement: "transpose" (a channel shuffle when groups > 1), "slice" (Slice/Split of channels), "pad"
MOVEMENT_KINDS = ("transpose", "slice", "pad")
FREE_KINDS = ("flatten",)
ESTIMATED_KINDS = ("other",)
OP_KINDS = COMPUTE_KINDS + ELEMENTWISE_KINDS + MOVEMENT_KINDS + FREE_KINDS + ESTIMATED_KINDS


@dataclass(frozen=True)
class Op:
    """One operator with the shapes that determine its cost (NCHW, batch 1)."""

    name: str
    kind: str
    inputs: tuple[str, ...]  # names of producer ops; "input" is the network input
    # fc: cin/cout are the reduced and produced features, hout the rows (a MatMul of a (rows, cin) input)
    # pad: kernel is the pixels added on each side; transpose: groups > 1 is a channel shuffle
    cin: int
    cout: int
    hin: int
    win: int
    hout: int
    wout: int
    # conv/pool windows: ``kernel``/``stride`` are the height's; the fields after ``groups`` describe the
    # rest only when it differs from a square, 'same'-padded, undilated window (what GraphBuilder makes)
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    kernel_w: int = 0  # 0: ``kernel`` (a square window)
    stride_w: int = 0  # 0: ``stride``
    pads: Optional[tuple[int, int, int, int]] = None  # (top, left, bottom, right); None: kernel // 2 on every side
    dilation: tuple[int, int] = (1, 1)

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return self.kernel, self.kernel_w or self.kernel

    @property
    def stride_hw(self) -> tuple[int, int]:
        return self.stride, self.stride_w or self.stride

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) pixels of zero padding around the input."""
        if self.pads is not None:
            return self.pads
        kh, kw = self.kernel_hw
        return kh // 2, kw // 2, kh // 2, kw // 2

    @property
    def window_area(self) -> int:
        """Kernel pixels per output pixel (kernel height x width)."""
        kh, kw = self.kernel_hw
        return kh * kw

    @property
    def macs(self) -> int:
        if self.kind in ("conv", "dwconv"):
            return self.hout * self.wout * self.cout * (self.cin // self.groups) * self.window_area
        if self.kind == "fc":
            return self.cin * self.cout * self.hout * self.wout
        return 0

    @property
    def params(self) -> int:
        if self.kind in ("conv", "dwconv"):
            return self.cout * (self.cin // self.groups) * self.window_area + self.cout
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

    def swish(self, x: str) -> str:
        """x * sigmoid(x) (SiLU, EfficientNet's activation), exported as Sigmoid then Mul."""
        return self._same("swish", x)

    def act(self, x: str, kind: str) -> str:
        """Apply an activation by name ("relu", "relu6", "hswish", "sigmoid", "hsigmoid", "swish", or "none")."""
        if kind == "none":
            return x
        if kind not in ("relu", "relu6", "hswish", "sigmoid", "hsigmoid", "swish"):
            raise ConfigError(f"unknown activation '{kind}'; valid: relu, relu6, hswish, sigmoid, hsigmoid, swish, none")
        return self._same(kind, x)

    def _same_shape(self, kind: str, a: str, b: str) -> str:
        if self._shape[a] != self._shape[b]:
            raise ConfigError(f"{self.name}: {kind} of mismatched shapes {self._shape[a]} and {self._shape[b]}")
        c, h, w = self._shape[a]
        return self._add(kind, [a, b], c, h, w)

    def mul(self, a: str, b: str) -> str:
        """Elementwise product (or quotient, difference) of two same-shaped tensors."""
        return self._same_shape("mul", a, b)

    def scale(self, x: str, gate: Optional[str] = None) -> str:
        """``x`` times a per-channel ``gate`` of shape (C, 1, 1) (a squeeze-excite), or a constant without one."""
        c, h, w = self._shape[x]
        if gate is not None and self._shape[gate] != (c, 1, 1):
            raise ConfigError(f"{self.name}: a scale gate must be ({c}, 1, 1), got {self._shape[gate]}")
        return self._add("scale", [x] if gate is None else [x, gate], c, h, w)

    def squeeze_excite(self, x: str, reduce: int = 4, gate: str = "sigmoid") -> str:
        """Squeeze-excite: global pool, 1x1 conv down, ReLU, 1x1 conv up, ``gate`` (sigmoid|hsigmoid), scale."""
        c = self._shape[x][0]
        s = self.relu(self.conv(self.gap(x), max(1, c // reduce), 1))
        s = self.conv(s, c, 1)
        if gate not in ("sigmoid", "hsigmoid"):
            raise ConfigError(f"unknown squeeze-excite gate '{gate}'; valid: sigmoid, hsigmoid")
        s = self._same(gate, s)
        return self.scale(x, s)

    def shuffle(self, x: str, groups: int) -> str:
        """Channel shuffle (ShuffleNet): reshape to (groups, C/groups), transpose, reshape back."""
        c, h, w = self._shape[x]
        if groups < 2 or c % groups:
            raise ConfigError(f"{self.name}: a channel shuffle needs groups >= 2 dividing {c} channels, got {groups}")
        return self._add("transpose", [x], c, h, w, groups=groups)

    def transpose(self, x: str) -> str:
        """Swap height and width (a plain data-moving Transpose; square maps only)."""
        c, h, w = self._shape[x]
        if h != w:
            raise ConfigError(f"{self.name}: transpose swaps height and width, which differ ({h}x{w})")
        return self._add("transpose", [x], c, h, w)

    def slice(self, x: str, channels: int) -> str:
        """The first ``channels`` channels (a ShuffleNet split half, a Slice)."""
        c, h, w = self._shape[x]
        if not 1 <= channels <= c:
            raise ConfigError(f"{self.name}: slice {channels} of {c} channels")
        return self._add("slice", [x], channels, h, w)

    def pad(self, x: str, pixels: int) -> str:
        """Zero-pad ``pixels`` on every side of the map."""
        c, h, w = self._shape[x]
        if pixels < 1:
            raise ConfigError(f"{self.name}: pad by a positive number of pixels, got {pixels}")
        return self._add("pad", [x], c, h + 2 * pixels, w + 2 * pixels, kernel=pixels)

    def softmax(self, x: str) -> str:
        """Softmax over the channels."""
        return self._same("softmax", x)

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


def fold_swish(graph: Graph) -> Graph:
    """``x * sigmoid(x)`` written as two ops (a Sigmoid whose only consumer multiplies it by its own
    input) becomes one "swish" op named after the product, as the runtimes run it."""
    sigmoids = {op.name: op for op in graph.ops if op.kind == "sigmoid"}
    if not sigmoids:  # most graphs: nothing to fold, and this runs on every prediction
        return graph
    # products of a sigmoid and its own input; a squeeze-excite gate (a sigmoid of something else) is none,
    # so a graph folded already costs one more scan here, not its consumers again
    candidates = [(op.name, gate, x) for op in graph.ops if op.kind == "mul" and len(op.inputs) == 2
                  for gate, x in (op.inputs, op.inputs[::-1]) if gate in sigmoids and sigmoids[gate].inputs == (x,)]
    if not candidates:
        return graph
    consumers = graph.consumers()
    gates: set[str] = set()
    swish_of: dict[str, str] = {}  # the product's name -> x
    for product, gate, x in candidates:
        if product not in swish_of and consumers[gate] == [product]:
            gates.add(gate)
            swish_of[product] = x
    if not gates:
        return graph
    ops = tuple(replace(op, kind="swish", inputs=(swish_of[op.name],)) if op.name in swish_of else op
                for op in graph.ops if op.name not in gates)
    return Graph(graph.name, graph.input_shape, ops)


def _conv_out(size: int, kernel: int, stride: int) -> int:
    """Output size of a 'same'-padded (pad = kernel // 2) window; pooling uses the same rule."""
    return max(1, (size + 2 * (kernel // 2) - kernel) // stride + 1)


# --- ONNX (kept in their own modules; imported lazily: onnx is a heavy import) -----------------

def to_onnx(graph: Graph, path: Path, seed: int = 0, opset: int = 17) -> Path:
    """Write ``graph`` as an ONNX model with random weights (for measuring it)."""
    from edgetune.predict._onnx_export import export_onnx

    return export_onnx(graph, path, seed, opset)


def graph_from_onnx(path: Path) -> tuple[Graph, list[str]]:
    """Read an ONNX model into a Graph; returns (graph, ops it read as kind "other": costed by estimate).

    No-ops (Identity, Dropout, Reshape, Flatten, Squeeze, Unsqueeze) and constant subgraphs are free
    and never listed; an operator the predictor has no kind for becomes an "other" op, so a
    prediction estimates it (and says so) instead of leaving it out.
    """
    from edgetune.predict._onnx_import import read_onnx

    return read_onnx(Path(path))


# --- plain-data form (JSON) ----------------------------------------------------------------

_OP_FIELDS = ("name", "kind", "inputs", "cin", "cout", "hin", "win", "hout", "wout", "kernel", "stride", "groups")
# written only as far as one differs from its default: a description of a GraphBuilder network (square,
# 'same'-padded, undilated windows) keeps the twelve fields above, as the profiles' records hold them
_WINDOW_FIELDS = ("kernel_w", "stride_w", "pads", "dilation")
_DEFAULTS = {f.name: f.default for f in fields(Op)}
_OPTIONAL_TUPLES = ("pads", "dilation")


def _row(op: Op) -> list[Any]:
    """An op as a list of its fields (_OP_FIELDS, then the window fields it needs)."""
    names = _OP_FIELDS + _WINDOW_FIELDS
    while len(names) > len(_OP_FIELDS) and getattr(op, names[-1]) == _DEFAULTS[names[-1]]:
        names = names[:-1]  # type: ignore[assignment]
    return [list(v) if isinstance(v, tuple) else v for v in (getattr(op, f) for f in names)]


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """A JSON-ready description of ``graph`` (ops as lists, in _OP_FIELDS order)."""
    return {"name": graph.name, "input_shape": list(graph.input_shape), "ops": [_row(op) for op in graph.ops]}


def graph_from_dict(data: dict[str, Any]) -> Graph:
    """Inverse of graph_to_dict."""
    try:
        ops = tuple(Op(**{f: (tuple(v) if f == "inputs" or (f in _OPTIONAL_TUPLES and v is not None) else v)  # type: ignore[arg-type]
                          for f, v in zip(_OP_FIELDS + _WINDOW_FIELDS, row)}) for row in data["ops"])
        return Graph(str(data["name"]), tuple(int(d) for d in data["input_shape"]), ops)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"not a network description ({exc}); expected keys name, input_shape, ops") from None
