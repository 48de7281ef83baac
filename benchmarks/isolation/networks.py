"""Held-out CNN families for the isolation benchmark, in PyTorch (so every runtime's candidates build).

None comes from the zoo, the tests or the predictor's generators: channel shuffle (ShuffleNet-like),
fire modules (SqueezeNet-like), squeeze-excite with hardswish (EfficientNet-like), plain 3x3 stacks
(VGG-like) and grouped convolutions (ResNeXt-like), each at two sizes.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: type = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), act())


class Shuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(_cbr(half, half, 1), nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False),
                                    nn.BatchNorm2d(half), _cbr(half, half, 1))
        self.shuffle = Shuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return self.shuffle(torch.cat([a, self.branch(b)], dim=1))


def shufflenet_like(width: int, units: int) -> nn.Module:
    layers: list[nn.Module] = [_cbr(3, width, 3, 2)]
    for stage in range(3):
        channels = width * 2 ** stage
        if stage:
            layers.append(_cbr(channels // 2, channels, 3, 2))
        layers.extend(ShuffleUnit(channels) for _ in range(units))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width * 4, 10))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], dim=1)


def squeezenet_like(base: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, base * 2, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        Fire(base * 2, base // 2, base), Fire(base * 2, base // 2, base), nn.MaxPool2d(3, 2),
        Fire(base * 2, base, base * 2), Fire(base * 4, base, base * 2),
        nn.Conv2d(base * 4, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, max(8, channels // 4), 1), nn.ReLU(),
                                  nn.Conv2d(max(8, channels // 4), channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4, k: int = 3) -> None:
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(_cbr(cin, mid, 1, act=nn.Hardswish), _cbr(mid, mid, k, stride, mid, nn.Hardswish),
                                  SqueezeExcite(mid), nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.skip else y


def efficientnet_like(width: int) -> nn.Module:
    c = [width, width * 3 // 2, width * 5 // 2, width * 4]
    return nn.Sequential(_cbr(3, c[0], 3, 2, act=nn.Hardswish), MBConv(c[0], c[1], 2), MBConv(c[1], c[1], 1, k=5),
                         MBConv(c[1], c[2], 2, k=5), MBConv(c[2], c[2], 1), MBConv(c[2], c[3], 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c[3], 10))


def vgg_like(widths: tuple[int, ...]) -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    for cout in widths:
        layers += [_cbr(cin, cout), _cbr(cout, cout), nn.MaxPool2d(2)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


class ResNeXtBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_cbr(cin, cout // 2, 1), _cbr(cout // 2, cout // 2, 3, stride, groups),
                                  nn.Conv2d(cout // 2, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout
                     else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnext_like(width: int, groups: int) -> nn.Module:
    return nn.Sequential(_cbr(3, width, 3, 2), ResNeXtBlock(width, width * 2, 1, groups),
                         ResNeXtBlock(width * 2, width * 4, 2, groups), ResNeXtBlock(width * 4, width * 4, 1, groups),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width * 4, 10))


# name -> (factory, input resolution)
NETWORKS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "shufflenet-s": (lambda: shufflenet_like(24, 1), 64),
    "shufflenet-m": (lambda: shufflenet_like(48, 2), 96),
    "squeezenet-s": (lambda: squeezenet_like(16), 64),
    "squeezenet-m": (lambda: squeezenet_like(32), 128),
    "efficientnet-s": (lambda: efficientnet_like(16), 64),
    "efficientnet-m": (lambda: efficientnet_like(24), 128),
    "vgg-s": (lambda: vgg_like((16, 32)), 32),
    "vgg-m": (lambda: vgg_like((32, 64, 128)), 64),
    "resnext-s": (lambda: resnext_like(16, 4), 64),
    "resnext-m": (lambda: resnext_like(32, 8), 96),
}


def build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, int, int, int]]:
    """The network ``name`` with seeded random weights (eval mode) and its input shape."""
    factory, res = NETWORKS[name]
    torch.manual_seed(seed)
    model = factory().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so int8 has real ranges to calibrate
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model, (1, 3, res, res)
