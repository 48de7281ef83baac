"""Kernel configurations: what the profiler measures, and the features every kernel is predicted from.

A kernel is described by its head op (conv, depthwise conv, fully connected, pooling, add,
concat, resize, a standalone elementwise op) and the elementwise ops fused into it. The sampler draws
single-kernel graphs over the ranges edge networks use; features are computed from a Kernel,
so a sampled kernel and a kernel split out of a network are described the same way.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from edgetune.predict._fusion import FusionRules, Kernel, split_kernels
from edgetune.predict._graph import Graph, GraphBuilder

# Head kinds with their own regressor, and the share of the profiling budget each gets.
# conv includes grouped convolutions (a fifth of its samples); transpose includes channel shuffles.
HEAD_SHARE = {
    "conv": 0.28, "dwconv": 0.17, "fc": 0.05, "maxpool": 0.04, "avgpool": 0.03, "gap": 0.04,
    "add": 0.06, "concat": 0.03, "bn": 0.03, "relu": 0.03, "relu6": 0.02, "hswish": 0.02, "sigmoid": 0.02,
    "resize": 0.02, "mul": 0.03, "scale": 0.04, "transpose": 0.03, "slice": 0.02, "pad": 0.02, "softmax": 0.01,
    "hsigmoid": 0.01, "swish": 0.02,
}
ACTS = ("relu", "relu6", "hswish", "sigmoid")
# The features of the first profiles (the shipped ones were trained on these); a profile's metadata
# lists the features it was trained with, so older profiles keep predicting with theirs.
BASE_FEATURES = ("cin", "cout", "hin", "hout", "kernel", "stride", "log_macs", "log_in", "log_out", "log_params",
                 "bn", "relu", "relu6", "hswish", "sigmoid", "add", "macs_per_out", "cin_mod16", "cout_mod16", "reduce")
# Grouped convolutions and channel blocking: ONNX Runtime's NCHWc kernels and OpenVINO's blocked layouts
# work on blocks of 8 (AVX2) or 16 (AVX-512) channels, so a pruned 37-channel conv pays for 40 or 48
# (the padded share), and a grouped conv's cost follows its channels per group, not its MACs alone.
ALIGNMENT_FEATURES = ("log_groups", "cout_per_group", "cin_pad8", "cout_pad8", "cin_pad16", "cout_pad16")
FEATURES = BASE_FEATURES + ALIGNMENT_FEATURES

_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112)
_MAX_MACS = 150e6  # the largest single kernels edge networks of this size have
_MAX_CHAIN_MACS = 300e6


def _padded(channels: int, block: int) -> float:
    """Channels rounded up to ``block`` over channels: the share of a blocked kernel's work that is padding."""
    return float(-(-channels // block) * block) / max(channels, 1)


def feature_values(kernel: Kernel) -> dict[str, float]:
    """Every feature this edgetune knows for one kernel, by name."""
    op = kernel.head
    macs = op.macs
    elems_in = op.in_elems * (len(op.inputs) if op.kind in ("add", "concat", "mul") else 1)
    kinds = [f.kind for f in kernel.followers]
    groups = max(op.groups, 1)
    (kh, kw), (sh, sw) = op.kernel_hw, op.stride_hw
    # a non-square window reads as the square one of its area: the shapes the profiles were trained on
    side, step = (float(kh) if kh == kw else math.sqrt(kh * kw)), (float(sh) if sh == sw else math.sqrt(sh * sw))
    values = [
        float(op.cin), float(op.cout), float(op.hin), float(op.hout), side, step,
        math.log1p(macs), math.log1p(elems_in), math.log1p(op.out_elems), math.log1p(op.params),
        float(kinds.count("bn")), *(float(a in kinds) for a in ACTS), float("add" in kinds),
        macs / max(op.out_elems, 1), float(op.cin % 16), float(op.cout % 16),
        float(op.cin // groups * op.window_area),
        math.log2(groups), float(op.cout // groups), _padded(op.cin, 8), _padded(op.cout, 8),
        _padded(op.cin, 16), _padded(op.cout, 16),
    ]
    return dict(zip(FEATURES, values))


def features(kernel: Kernel, names: Sequence[str] = FEATURES) -> list[float]:
    """The regressor's inputs for one kernel (in the order of ``names``)."""
    values = feature_values(kernel)
    return [values[n] for n in names]


def _channels(rng: np.random.Generator, low: int = 4, high: int = 640) -> int:
    """Log-uniform channels; most in blocks of 8, a third not (pruned networks have any count)."""
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    draw = rng.random()
    step = 8 if value >= 32 and draw < 0.65 else (4 if value >= 8 and draw < 0.8 else 1)
    return max(low, int(round(value / step)) * step)


def _size(rng: np.random.Generator, low: int = 1) -> int:
    choices = [s for s in _SIZES if s >= low]
    return int(rng.choice(choices)) if rng.random() < 0.8 else int(rng.integers(max(low, 2), 113))


def sample_kernel(head: str, rng: np.random.Generator, rules: FusionRules, index: int = 0) -> Graph:
    """One random single-kernel graph whose head is ``head``, with followers the runtime fuses."""
    for _ in range(100):
        graph = _draw(head, rng, rules, index)
        if graph is not None:
            return graph
    raise RuntimeError(f"could not draw a {head} kernel within the size limits")  # pragma: no cover


def _draw(head: str, rng: np.random.Generator, rules: FusionRules, index: int) -> Optional[Graph]:
    cin = _channels(rng)
    hw = _size(rng, 1)
    if head == "fc":
        b = GraphBuilder(f"k{index}-fc", (1, _channels(rng, 8, 2048), 1, 1))
        x = b.fc("input", _channels(rng, 2, 2048))
        return _finish(b, x, head, rng, rules)
    if head in ("conv", "dwconv"):
        return _draw_conv(head, cin, hw, rng, rules, index)
    if head in ("maxpool", "avgpool"):
        if hw < 2:
            return None
        b = GraphBuilder(f"k{index}-{head}", (1, cin, hw, hw))
        kernel = int(rng.choice([2, 3]))
        return b.build(b.pool("input", head, kernel, 2 if rng.random() < 0.8 else 1))
    if head == "gap":
        b = GraphBuilder(f"k{index}-gap", (1, cin, max(hw, 2), max(hw, 2)))
        return b.build(b.gap("input"))
    if head == "resize":  # an input or feature-map resize (up or down), bilinear
        out = _size(rng, 1)
        cin = int(rng.choice([1, 3])) if rng.random() < 0.5 else cin  # half of them resize a network's input
        if out == hw or cin * max(hw, out) ** 2 > 2_000_000:
            return None
        b = GraphBuilder(f"k{index}-resize", (1, cin, hw, hw))
        return b.build(b.resize("input", out))
    if cin * hw * hw > 2_000_000:
        return None
    return _draw_elementwise(head, cin, hw, rng, rules, index)


def _draw_conv(head: str, cin: int, hw: int, rng: np.random.Generator, rules: FusionRules, index: int) -> Optional[Graph]:
    """A conv (a fifth of them grouped, 2-32 groups, as ResNeXt/ShuffleNet use) or depthwise conv kernel."""
    kernel = int(rng.choice([1, 3, 5, 7], p=[0.4, 0.4, 0.1, 0.1] if head == "conv" else [0.0, 0.6, 0.25, 0.15]))
    stride = 2 if rng.random() < 0.25 and hw >= 4 else 1
    residual = rules.fuses(head, "add") and stride == 1 and rng.random() < 0.25
    groups = int(rng.choice([2, 3, 4, 8, 16, 32])) if head == "conv" and rng.random() < 0.2 else 1
    if groups > 1:
        per_in, per_out = max(1, cin // groups), max(1, _channels(rng) // groups)
        cin, cout = per_in * groups, (per_in if residual else per_out) * groups
    else:
        cout = cin if head == "dwconv" or residual else _channels(rng)
    b = GraphBuilder(f"k{index}-{head}", (1, cin, hw, hw))
    x = b.conv("input", cout, kernel, stride, groups) if head == "conv" else b.dwconv("input", kernel, stride)
    if b.ops[-1].macs > _MAX_MACS or (groups > 1 and b.ops[-1].kind != "conv"):
        return None
    return _finish(b, x, head, rng, rules, residual)


def _draw_elementwise(head: str, cin: int, hw: int, rng: np.random.Generator, rules: FusionRules,
                      index: int) -> Optional[Graph]:
    """Elementwise and data-moving kernels on a (cin, hw, hw) input."""
    b = GraphBuilder(f"k{index}-{head}", (1, cin, hw, hw))
    if head == "add":
        return _finish(b, b.add("input", "input"), head, rng, rules)
    if head == "bn":
        return _finish(b, b.bn("input"), head, rng, rules)
    if head in ("concat", "mul"):
        return b.build(b.concat(["input", "input"]) if head == "concat" else b.mul("input", "input"))
    if head == "scale":  # a per-channel scale, as a squeeze-excite gate applies it
        return b.build(b.scale("input"))
    if head == "transpose":
        divisors = [g for g in (2, 3, 4, 8) if cin % g == 0]
        if not divisors and hw < 2:
            return None
        return b.build(b.shuffle("input", int(rng.choice(divisors))) if divisors and rng.random() < 0.8 else b.transpose("input"))
    if head == "slice":
        return b.build(b.slice("input", max(1, int(cin * rng.choice([0.25, 0.5, 0.75])))))
    if head == "pad":
        return b.build(b.pad("input", int(rng.choice([1, 1, 2, 3]))))
    if head == "softmax":
        b = GraphBuilder(f"k{index}-softmax", (1, _channels(rng, 2, 2048), 1, 1) if rng.random() < 0.6 else (1, cin, hw, hw))
        return b.build(b.softmax("input"))
    return b.build(b.act("input", head))


def _finish(b: GraphBuilder, x: str, head: str, rng: np.random.Generator, rules: FusionRules,
            residual: bool = False) -> Graph:
    """Append followers the runtime fuses into ``head``: bn, then a residual add, then an activation."""
    if head in ("conv", "dwconv") and rules.fuses(head, "bn") and rng.random() < 0.85:
        x = b.bn(x)
    if residual:
        x = b.add(x, "input")
    fusable = [a for a in ACTS if rules.fuses(head, a)]
    if fusable and rng.random() < 0.75:
        x = b.act(x, str(rng.choice(fusable)))
    graph = b.build(x)
    kernels = split_kernels(graph, rules)
    if len(kernels) != 1:  # a follower did not fuse after all (e.g. act after add): drop the graph's tail
        keep = {op for op in kernels[0].ops}
        graph = Graph(graph.name, graph.input_shape, tuple(op for op in graph.ops if op.name in keep or op.kind == "flatten"))
    return graph


def sample_chain(rng: np.random.Generator, rules: FusionRules, index: int = 0) -> Graph:
    """A random network of 2-30 kernels with consistent shapes (convs, depthwise, residual adds, pools, a head).

    The profiler measures these beside single kernels to learn what a kernel costs inside a
    network rather than alone (no layout conversion at its borders, warm caches). They are
    random chains, not the benchmark's network families.
    """
    hw = int(rng.choice([8, 16, 24, 32, 48, 64, 96, 112]))
    b = GraphBuilder(f"chain{index}", (1, int(rng.choice([1, 3, 8, 16, 32])), hw, hw))
    x = "input"
    for _ in range(int(rng.integers(1, 16))):
        c, h, _w = b.shape(x)
        choice = rng.random()
        act = str(rng.choice(ACTS[:3]))
        if choice < 0.35:
            x = b.act(b.bn(b.conv(x, _channels(rng, 8, 256), int(rng.choice([1, 3, 5])), 2 if h >= 8 and rng.random() < 0.25 else 1)), act)
        elif choice < 0.6:
            y = b.act(b.bn(b.dwconv(x, int(rng.choice([3, 5, 7])), 1)), act)
            y = b.bn(b.conv(y, c, 1))
            x = b.add(y, x) if rng.random() < 0.7 else y
        elif choice < 0.75 and h >= 4:
            x = b.pool(x, str(rng.choice(["maxpool", "avgpool"])), 2, 2)
        elif choice < 0.9:
            y = b.relu(b.bn(b.conv(x, c, 3, 1)))
            x = b.relu(b.add(b.bn(b.conv(y, c, 3, 1)), x))
        else:
            x = b.act(x, act)
        if sum(op.macs for op in b.ops) > _MAX_CHAIN_MACS:
            break
    x = b.gap(x)
    return b.build(b.fc(x, int(rng.choice([10, 100]))))


_FLAT_INPUTS = 16384  # the most inputs an extended network's flattened FC head takes


def extended_rng(seed: int, stored: int) -> np.random.Generator:
    """The extended networks' own stream for a profiling round (``sample_network(..., extended=True)``)."""
    return np.random.default_rng([seed, 0x5EED, stored])


def sample_network(rng: np.random.Generator, index: int = 0, extended: bool = False) -> Graph:
    """A random network-shaped stack of at most _MAX_CHAIN_MACS (see ``_draw_network``)."""
    for _ in range(20):
        graph = _draw_network(rng, index, extended)
        if graph.macs <= _MAX_CHAIN_MACS:
            break
    return graph


def _draw_network(rng: np.random.Generator, index: int, extended: bool = False) -> Graph:
    """A random network-shaped stack for in-network profiling: at 8-160 pixels (a fifth of them
    resized from another input size first), a stem, 2-6 stages that halve the resolution and
    widen, each of 1-4 random blocks (``_block``), then a head (and a softmax on some).

    ``extended`` networks (a stream of their own, ``extended_rng``: the first stream's draws, hence
    the reference networks and existing profiles' samples, stay as they were) also draw swish as the
    activation, parallel branches concatenated (fire/Inception-style blocks), more grouped
    residual blocks (half of them, up to 32 groups, as in ResNeXt) and, on 40%, a
    VGG-style head that flattens the feature map into FC layers (up to 16,384 inputs).

    Built by its own generator and seeds, so no benchmark network is a profiling sample; the
    profiler times these whole and reads each kernel's cost inside them (``_context``).
    """
    hw = int(rng.choice([8, 12, 16, 16, 24, 32, 48, 64, 96, 112, 128, 160]))
    channels = int(rng.choice([1, 3, 3, 3, 8]))
    if rng.random() < 0.2:  # fed another size and resized first, as edgetune's search networks are
        fed = int(rng.choice([s for s in (8, 16, 28, 32, 64) if s != hw]))
        b = GraphBuilder(f"net{index}", (1, channels, fed, fed))
        x = b.resize("input", hw)
    else:
        b = GraphBuilder(f"net{index}", (1, channels, hw, hw))
        x = "input"
    act = str(rng.choice(["relu", "relu", "relu6", "hswish", *(["swish"] if extended else [])]))
    width = _channels(rng, 8, 48)
    x = b.act(b.bn(b.conv(x, width, int(rng.choice([3, 3, 5])), 2 if hw >= 48 and rng.random() < 0.7 else 1)), act)
    for stage in range(int(rng.integers(2, 7))):
        cout = _channels(rng, max(8, width), min(640, max(16, width * 3)))
        for block in range(int(rng.integers(1, 5))):
            stride = 2 if block == 0 and stage > 0 and b.shape(x)[1] >= 4 and rng.random() < 0.8 else 1
            x = _block(b, x, cout, stride, act, rng, extended)
            if sum(op.macs for op in b.ops) > _MAX_CHAIN_MACS:
                break
        width = cout
        if sum(op.macs for op in b.ops) > _MAX_CHAIN_MACS:
            break
    if extended and rng.random() < 0.4:
        return _flattened_head(b, x, rng)
    if rng.random() < 0.5:
        x = b.act(b.bn(b.conv(x, _channels(rng, 64, 640), 1)), act)
    x = b.gap(x)
    if rng.random() < 0.3:
        x = b.relu(b.fc(x, int(rng.choice([64, 128, 256]))))
    x = b.fc(x, int(rng.choice([10, 100, 1000])))
    return b.build(b.softmax(x) if rng.random() < 0.2 else x)


def _flattened_head(b: GraphBuilder, x: str, rng: np.random.Generator) -> Graph:
    """VGG-style: the feature map pooled down to at most 16,384 values, flattened into two FC layers."""
    while b.shape(x)[0] * b.shape(x)[1] * b.shape(x)[2] > _FLAT_INPUTS and b.shape(x)[1] >= 2:
        x = b.pool(x, "maxpool", 2, 2)
    x = b.relu(b.fc(x, int(rng.choice([128, 256, 512, 1024]))))
    x = b.fc(x, int(rng.choice([10, 100, 1000])))
    return b.build(b.softmax(x) if rng.random() < 0.2 else x)


def _block(b: GraphBuilder, x: str, cout: int, stride: int, act: str, rng: np.random.Generator,
           extended: bool = False) -> str:
    """One random block: inverted residual (with a squeeze-excite on some), basic residual, grouped
    residual (ResNeXt-style), channel-shuffle unit, conv-bn-act (padded on some), or a pool; in an
    extended network a fifth are parallel branches concatenated (SqueezeNet's fire module)."""
    c, h, _w = b.shape(x)
    if extended and rng.random() < 0.2:
        squeeze = b.act(b.conv(x, max(4, c // int(rng.choice([2, 4, 8]))), 1), act)
        left = b.act(b.conv(squeeze, max(4, cout // 2), 1, stride), act)
        return b.concat([left, b.act(b.conv(squeeze, max(4, cout - cout // 2), 3, stride), act)])
    choice = rng.random()
    if choice < 0.35:  # inverted residual (MobileNetV2-style, squeeze-excite as in MobileNetV3 on a third)
        expand = int(rng.choice([1, 3, 4, 6]))
        y = b.act(b.bn(b.conv(x, c * expand, 1)), act) if expand > 1 else x
        y = b.act(b.bn(b.dwconv(y, int(rng.choice([3, 5, 7])), stride)), act)
        if rng.random() < 0.35:
            y = b.squeeze_excite(y, 4, str(rng.choice(["sigmoid", "hsigmoid"])))
        y = b.bn(b.conv(y, cout, 1))
        return b.add(y, x) if stride == 1 and c == cout else y
    if choice < 0.55:  # basic residual block, a third of them grouped (ResNeXt-style; half, up to 32 groups, when extended)
        groups = int(rng.choice([2, 4, 8, 16, *([32] if extended else [])])) if rng.random() < (0.5 if extended else 0.35) \
            and cout % 16 == 0 else 1
        groups = groups if cout % groups == 0 else 16
        y = b.relu(b.bn(b.conv(x, cout, 1 if groups > 1 else 3, 1 if groups > 1 else stride)))
        y = b.relu(b.bn(b.conv(y, cout, 3, stride, groups))) if groups > 1 else y
        y = b.bn(b.conv(y, cout, 1 if groups > 1 else 3, 1))
        skip = x if stride == 1 and c == cout else b.bn(b.conv(x, cout, 1, stride))
        return b.relu(b.add(y, skip))
    if choice < 0.7 and c % 2 == 0 and stride == 1:  # channel split + shuffle unit (ShuffleNetV2-style)
        half = c // 2
        y = b.relu(b.bn(b.conv(b.slice(x, half), half, 1)))
        y = b.relu(b.bn(b.conv(b.bn(b.dwconv(y, 3, 1)), half, 1)))
        return b.shuffle(b.concat([b.slice(x, half), y]), 2)
    if choice < 0.9:
        if rng.random() < 0.15 and h >= 4:  # explicit padding before a valid conv (TF-exported nets)
            return b.act(b.bn(b.conv(b.pad(x, 1), cout, 3, stride)), act)
        return b.act(b.bn(b.conv(x, cout, int(rng.choice([1, 3, 5])), stride)), act)
    if h >= 4:
        return b.pool(x, str(rng.choice(["maxpool", "avgpool"])), int(rng.choice([2, 3])), 2)
    return x


BORDER_GROUPS = ("conv", "dwconv", "pool", "elementwise")
BORDER_REPEATS = 8


def border_group(kind: str) -> str:
    """Which border model a kernel head uses: layout-changing ops pay a conversion at their borders when alone."""
    if kind in ("conv", "dwconv"):
        return kind
    if kind in ("maxpool", "avgpool", "gap"):
        return "pool"
    return "elementwise"


def sample_border_pair(rng: np.random.Generator, rules: FusionRules, index: int = 0) -> tuple[str, Graph, Graph]:
    """(group, one kernel, the same kernel BORDER_REPEATS times in a row) for a shape-preserving kernel.

    The difference tells what a kernel costs alone (with its input and output converted at the
    graph borders) against what it costs between others of its kind inside a network.
    """
    group = BORDER_GROUPS[index % len(BORDER_GROUPS)]
    c, hw = _channels(rng, 8, 256), _size(rng, 4)
    while c * hw * hw > 1_500_000:
        hw = max(4, hw // 2)
        c = max(8, c // 2) if c * hw * hw > 1_500_000 else c
    kernel = int(rng.choice([1, 3])) if group == "conv" else int(rng.choice([3, 5]))
    act = str(rng.choice([a for a in ("relu", "relu6") if group in ("conv", "dwconv") and rules.fuses(group, a)] or ["none"]))
    elt = str(rng.choice(["relu", "add", "bn", "relu6"]))

    def build(repeats: int) -> Graph:
        b = GraphBuilder(f"border{index}-{group}x{repeats}", (1, c, hw, hw))
        x = "input"
        for _ in range(repeats):
            if group == "conv":
                x = b.act(b.bn(b.conv(x, c, kernel, 1)), act)
            elif group == "dwconv":
                x = b.act(b.bn(b.dwconv(x, kernel, 1)), act)
            elif group == "pool":
                x = b.pool(x, "maxpool", 3, 1)
            elif elt == "add":
                x = b.add(x, x)
            else:
                x = b.act(x, elt) if elt != "bn" else b.bn(x)
        return b.build(x)

    return group, build(1), build(BORDER_REPEATS)
