"""Held-out network families for the predictor benchmark: architectures profiling never generates.

A separate generator with its own seeds (never the profiler's ``_sampling`` or the reference set):
ShuffleNetV2-like (channel split, shuffle), SqueezeNet-like (fire modules), EfficientNet-like
(MBConv with squeeze-excite and swish = x * sigmoid(x)), VGG-like (plain 3x3 stacks, two FC layers)
and ResNeXt-like (bottlenecks with grouped 3x3 convolutions), at 32-160 pixels.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgetune.predict import Graph, GraphBuilder


def _ch(value: float, step: int = 8) -> int:
    return max(step, int(round(value / step)) * step)


def shufflenet_like(rng: np.random.Generator, index: int) -> Graph:
    res = int(rng.choice([64, 96, 128, 160]))
    width = float(rng.choice([0.5, 1.0, 1.5]))
    b = GraphBuilder(f"shufflenet{index}", (1, 3, res, res))
    x = b.pool(b.relu(b.bn(b.conv("input", 24, 3, 2))), "maxpool", 3, 2)
    for stage, repeats in enumerate((int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(1, 3)))):
        cout = _ch([58, 116, 232][stage] * width, 2)
        half = cout // 2
        left = b.bn(b.conv(b.bn(b.dwconv(x, 3, 2)), half, 1))  # the down-sampling unit: both branches stride 2
        right = b.relu(b.bn(b.conv(x, half, 1)))
        right = b.relu(b.bn(b.conv(b.bn(b.dwconv(right, 3, 2)), half, 1)))
        x = b.shuffle(b.concat([b.relu(left), right]), 2)
        for _ in range(repeats):
            keep, branch = b.slice(x, half), b.slice(x, half)
            branch = b.relu(b.bn(b.conv(branch, half, 1)))
            branch = b.relu(b.bn(b.conv(b.bn(b.dwconv(branch, 3, 1)), half, 1)))
            x = b.shuffle(b.concat([keep, branch]), 2)
    x = b.relu(b.bn(b.conv(x, 1024 if width >= 1 else 512, 1)))
    return b.build(b.fc(b.gap(x), 100))


def squeezenet_like(rng: np.random.Generator, index: int) -> Graph:
    res = int(rng.choice([32, 64, 96, 128]))
    b = GraphBuilder(f"squeezenet{index}", (1, 3, res, res))
    x = b.pool(b.relu(b.conv("input", int(rng.choice([32, 64])), 3, 2)), "maxpool", 3, 2)
    squeeze = int(rng.choice([8, 16]))
    for stage in range(int(rng.integers(2, 4))):
        for _ in range(2):
            s = b.relu(b.conv(x, squeeze, 1))
            x = b.concat([b.relu(b.conv(s, squeeze * 4, 1)), b.relu(b.conv(s, squeeze * 4, 3))])
        if b.shape(x)[1] >= 4:
            x = b.pool(x, "maxpool", 3, 2)
        squeeze *= 2
    x = b.relu(b.conv(x, 100, 1))
    return b.build(b.gap(x))


def efficientnet_like(rng: np.random.Generator, index: int) -> Graph:
    res = int(rng.choice([64, 96, 128, 160]))
    width = float(rng.choice([0.5, 0.75, 1.0]))
    b = GraphBuilder(f"efficientnet{index}", (1, 3, res, res))

    def swish(t: str) -> str:
        return b.mul(t, b.sigmoid(t))

    x = swish(b.bn(b.conv("input", _ch(32 * width), 3, 2)))
    for cout, stride, expand, k in [(16, 1, 1, 3), (24, 2, 6, 3), (40, 2, 6, 5), (80, 2, 6, 3), (112, 1, 6, 5)][: int(rng.integers(3, 6))]:
        for r in range(int(rng.integers(1, 3))):
            c, s = b.shape(x)[0], stride if r == 0 else 1
            y = swish(b.bn(b.conv(x, c * expand, 1))) if expand > 1 else x
            y = swish(b.bn(b.dwconv(y, k, s)))
            y = b.squeeze_excite(y, 4 * expand if expand > 1 else 4, str(rng.choice(["sigmoid", "hsigmoid"])))
            y = b.bn(b.conv(y, _ch(cout * width), 1))
            x = b.add(y, x) if s == 1 and c == _ch(cout * width) else y
    x = swish(b.bn(b.conv(x, _ch(320 * width), 1)))
    return b.build(b.fc(b.gap(x), 100))


def vgg_like(rng: np.random.Generator, index: int) -> Graph:
    res = int(rng.choice([32, 48, 64]))
    base = int(rng.choice([16, 32]))
    b = GraphBuilder(f"vgg{index}", (1, 3, res, res))
    x = "input"
    for stage in range(int(rng.integers(3, 5))):
        for _ in range(int(rng.integers(1, 3)) + (stage > 1)):
            x = b.relu(b.bn(b.conv(x, min(base * 2 ** stage, 256), 3)))
        x = b.pool(x, "maxpool", 2, 2)
    x = b.relu(b.fc(x, int(rng.choice([256, 512]))))
    return b.build(b.fc(x, 10))


def resnext_like(rng: np.random.Generator, index: int) -> Graph:
    res = int(rng.choice([32, 64, 96]))
    groups = int(rng.choice([8, 16, 32]))
    b = GraphBuilder(f"resnext{index}", (1, 3, res, res))
    x = b.relu(b.bn(b.conv("input", 32, 3, 1 if res <= 32 else 2)))
    for stage in range(int(rng.integers(2, 4))):
        width, cout = groups * 4 * 2 ** stage, 64 * 2 ** stage
        for block in range(int(rng.integers(1, 3))):
            stride = 2 if stage > 0 and block == 0 else 1
            y = b.relu(b.bn(b.conv(x, width, 1)))
            y = b.relu(b.bn(b.conv(y, width, 3, stride, groups)))
            y = b.bn(b.conv(y, cout, 1))
            skip = x if stride == 1 and b.shape(x)[0] == cout else b.bn(b.conv(x, cout, 1, stride))
            x = b.relu(b.add(y, skip))
    return b.build(b.fc(b.gap(x), 100))


HELD_OUT_FAMILIES: dict[str, Callable[[np.random.Generator, int], Graph]] = {
    "shufflenet": shufflenet_like, "squeezenet": squeezenet_like, "efficientnet": efficientnet_like,
    "vgg": vgg_like, "resnext": resnext_like,
}


def generate_heldout(count: int = 50, seed: int = 77) -> list[Graph]:
    """``count`` networks spread over the held-out families (names carry the family)."""
    rng = np.random.default_rng(seed)
    names = list(HELD_OUT_FAMILIES)
    return [HELD_OUT_FAMILIES[names[i % len(names)]](rng, i) for i in range(count)]
