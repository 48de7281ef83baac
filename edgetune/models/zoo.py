"""Reference networks defined in code (no downloads): a tiny digits CNN and a MobileNetV2-style net."""

from __future__ import annotations

from typing import Any, Callable

from edgetune._lazy import require
from edgetune.errors import ConfigError


def digits_cnn(num_classes: int = 10) -> Any:
    """A small CNN for 1x1x8x8 digits images (about 6k parameters)."""
    nn = require("torch.nn", "torch")
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes),
    )


def _make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v2_like(width_mult: float = 1.0, num_classes: int = 1000) -> Any:
    """MobileNetV2 (Sandler et al. 2018) layer for layer: inverted residuals, ReLU6, 1280-wide head."""
    torch = require("torch", "torch")
    nn = torch.nn

    def conv_bn(cin: int, cout: int, k: int, stride: int, groups: int = 1, act: bool = True) -> Any:
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)

    class InvertedResidual(nn.Module):  # type: ignore[name-defined]
        def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
            super().__init__()
            hidden = cin * expand
            layers = [conv_bn(cin, hidden, 1, 1)] if expand != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, 1, act=False)]
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: Any) -> Any:
            return x + self.block(x) if self.residual else self.block(x)

    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    cin = _make_divisible(32 * width_mult)
    last = _make_divisible(1280 * max(1.0, width_mult))
    layers = [conv_bn(3, cin, 3, 2)]
    for expand, channels, repeats, stride in settings:
        cout = _make_divisible(channels * width_mult)
        for i in range(repeats):
            layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
            cin = cout
    layers += [conv_bn(cin, last, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(last, num_classes)]
    return nn.Sequential(*layers)


ZOO: dict[str, tuple[Callable[[], Any], tuple[int, ...]]] = {
    "digits-cnn": (digits_cnn, (1, 1, 8, 8)),
    "mobilenetv2-like": (mobilenet_v2_like, (1, 3, 224, 224)),
    "mobilenetv2-like-96": (lambda: mobilenet_v2_like(width_mult=0.35), (1, 3, 96, 96)),
}


def zoo_model(name: str) -> tuple[Any, tuple[int, ...]]:
    """Return (fresh nn.Module, default input shape) for a built-in zoo network."""
    try:
        factory, shape = ZOO[name]
    except KeyError:
        raise ConfigError(f"unknown zoo model '{name}'; valid names: {', '.join(sorted(ZOO))}") from None
    return factory(), shape


def export_zoo_model(name: str, path: "str | Any", train_seconds: float = 0.0, seed: int = 0,
                     train_epochs: "int | None" = None) -> dict[str, Any]:
    """Build a zoo network, optionally train it on its built-in data, and save it (.pt2 or .onnx).

    Returns facts for the user: path, input shape, validation accuracy when trained.
    """
    from pathlib import Path

    torch = require("torch", "torch")
    torch.manual_seed(seed)
    module, shape = zoo_model(name)
    accuracy = None
    if train_epochs is not None and train_seconds <= 0:
        train_seconds = float("inf")
    if train_seconds > 0:
        if name != "digits-cnn":
            raise ConfigError(f"only digits-cnn has built-in training data; export '{name}' with --train-seconds 0")
        from edgetune.data import load_dataset
        from edgetune.models._train import train_classifier

        accuracy = train_classifier(module, load_dataset("digits"), train_seconds, seed, epochs=train_epochs)
    module.eval()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(shape)
    if out.suffix == ".onnx":
        torch.onnx.export(module, (example,), str(out), dynamo=True, external_data=False, input_names=["input"], output_names=["output"], verbose=False)
    elif out.suffix == ".pt2":
        torch.export.save(torch.export.export(module, (example,)), str(out))
    else:
        raise ConfigError(f"cannot save a model as '{out.suffix}'; use .pt2 (ExportedProgram) or .onnx")
    return {"name": name, "path": str(out), "input_shape": list(shape), "val_accuracy": accuracy}
