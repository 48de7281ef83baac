"""A seeded generator of diverse test networks for the predictor benchmark.

Families: MobileNet-like (inverted residuals, ReLU/ReLU6, kernel 3/5/7), ResNet-like (basic
blocks with residual adds), plain CNNs (conv-bn-relu + max-pool stacks), and networks drawn
from edgetune's search space when it is installed. Resolution 32-128 and width vary. None of
them is a profiling sample: the profiler measures single kernels only.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgetune.predict import Graph, GraphBuilder


def _ch(value: float) -> int:
    return max(8, int(round(value / 8)) * 8)


def mobilenet_like(rng: np.random.Generator, index: int) -> Graph:
    res = int(rng.choice([32, 48, 64, 96, 112, 128]))
    width = float(rng.choice([0.35, 0.5, 0.75, 1.0]))
    act = str(rng.choice(["relu", "relu6"]))
    b = GraphBuilder(f"mbnet{index}", (1, 3, res, res))
    x = b.act(b.bn(b.conv("input", _ch(32 * width), 3, 2)), act)
    stages = [(16, 1, 1, 1), (24, 2, 2, 6), (32, 3, 2, 6), (64, 3, 2, 6), (96, 2, 1, 6)][: int(rng.integers(3, 6))]
    for channels, repeats, stride, expand in stages:
        cout = _ch(channels * width)
        for r in range(int(rng.integers(1, repeats + 1))):
            s = stride if r == 0 else 1
            k = int(rng.choice([3, 5, 7]))
            e = expand if expand == 1 else int(rng.choice([3, 4, 6]))
            cin = b.shape(x)[0]
            h = b.act(b.bn(b.conv(x, cin * e, 1)), act) if e != 1 else x
            h = b.act(b.bn(b.dwconv(h, k, s)), act)
            h = b.bn(b.conv(h, cout, 1))
            x = b.add(h, x) if s == 1 and cin == cout else h
    x = b.act(b.bn(b.conv(x, _ch(320 * width), 1)), act)
    return b.build(b.fc(b.gap(x), 10))


def resnet_like(rng: np.random.Generator, index: int) -> Graph:
    res = int(rng.choice([32, 48, 64, 96]))
    base = int(rng.choice([8, 16, 24, 32]))
    b = GraphBuilder(f"resnet{index}", (1, 3, res, res))
    x = b.relu(b.bn(b.conv("input", base, 3, 1 if res <= 48 else 2)))
    if rng.random() < 0.5:
        x = b.pool(x, "maxpool", 3, 2)
    for stage in range(int(rng.integers(2, 5))):
        cout = base * 2 ** stage
        for block in range(int(rng.integers(1, 3))):
            stride = 2 if stage > 0 and block == 0 else 1
            h = b.relu(b.bn(b.conv(x, cout, 3, stride)))
            h = b.bn(b.conv(h, cout, 3, 1))
            skip = x if stride == 1 and b.shape(x)[0] == cout else b.bn(b.conv(x, cout, 1, stride))
            x = b.relu(b.add(h, skip))
    return b.build(b.fc(b.gap(x), 10))


def plain_cnn(rng: np.random.Generator, index: int) -> Graph:
    res = int(rng.choice([32, 48, 64, 96, 128]))
    b = GraphBuilder(f"plain{index}", (1, int(rng.choice([1, 3])), res, res))
    x = "input"
    width = int(rng.choice([8, 16, 24, 32]))
    for stage in range(int(rng.integers(2, 5))):
        for _ in range(int(rng.integers(1, 3))):
            x = b.relu(b.bn(b.conv(x, width * 2 ** stage, int(rng.choice([3, 5])), 1)))
        x = b.pool(x, str(rng.choice(["maxpool", "avgpool"])), 2, 2)
    x = b.gap(x)
    if rng.random() < 0.5:
        x = b.relu(b.fc(x, int(rng.choice([64, 128]))))
    return b.build(b.fc(x, 10))


FAMILIES: dict[str, Callable[[np.random.Generator, int], Graph]] = {
    "mobilenet": mobilenet_like, "resnet": resnet_like, "plain": plain_cnn,
}


def search_space_networks(rng: np.random.Generator, count: int) -> list[Graph]:
    """Networks sampled from edgetune's search space (empty when it offers no sampler)."""
    try:
        from edgetune.search import sample_graphs  # type: ignore[attr-defined]
    except ImportError:
        return []
    return list(sample_graphs(count, seed=int(rng.integers(1 << 30))))


def generate(count: int = 120, seed: int = 2026) -> list[Graph]:
    """``count`` networks, a quarter from the search space when available, the rest spread over the families."""
    rng = np.random.default_rng(seed)
    graphs = search_space_networks(rng, count // 4)
    names = list(FAMILIES)
    while len(graphs) < count:
        family = names[len(graphs) % len(names)]
        graphs.append(FAMILIES[family](rng, len(graphs)))
    return graphs
