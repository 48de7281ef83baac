"""Search spaces: architecture, hyperparameters and augmentation, sampled through an Optuna trial.

A candidate is plain data (``Candidate``). The same description builds the PyTorch module that
is trained and the ``Graph`` the latency predictor reads, so a candidate is predicted without
exporting it. Spaces: ``mobilenet`` (MobileNetV2/MCUNet-style inverted residual stages: depth,
width multiplier, kernel 3/5/7, expansion ratio, input resolution) and ``plain`` (a small
conv-bn-relu CNN for tiny MCUs). Choices can be narrowed or widened from a YAML file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from edgetune._lazy import require
from edgetune.errors import ConfigError, one_line
from edgetune.predict import Graph, GraphBuilder

# Every choice a space offers; a YAML file may replace any list (and nothing else).
DEFAULT_CHOICES: dict[str, dict[str, list[Any]]] = {
    "mobilenet": {
        "resolution": [8, 12, 16], "width": [0.5, 0.75, 1.0], "stem": [16],
        "stage_channels": [[16, 24, 32]], "depth": [1, 2, 3], "kernel": [3, 5, 7], "expand": [1, 3, 6],
    },
    "plain": {
        "resolution": [8, 12, 16], "blocks": [1, 2, 3], "channels": [8, 16, 32], "kernel": [3, 5],
    },
}
# lr, weight_decay: [low, high] ranges sampled on a log scale (a grid search takes low, geometric mean, high);
# epochs: [low, high] integers; everything else: a list of choices. aug_*: the augmentation policy
# (0 turns one off): shift (pixels), rotation (degrees), scale (relative zoom), erase (probability
# of a random erased square), noise (Gaussian std).
HP_CHOICES: dict[str, list[Any]] = {
    "lr": [1e-3, 3e-2], "weight_decay": [1e-5, 1e-3], "batch_size": [32, 64, 128], "optimizer": ["adam", "sgd"],
    "epochs": [1, 4], "label_smoothing": [0.0, 0.05, 0.1],
    "aug_shift": [0, 1], "aug_rotate": [0, 10, 20], "aug_scale": [0.0, 0.1, 0.2], "aug_erase": [0.0, 0.25],
    "aug_noise": [0.0, 0.05, 0.1],
}
# Deployment: the precision the winner ships at and the share of channels pruned, both built with the
# compile pipeline's Lowerings. Precisions the target/runtime cannot build are dropped at search time.
DEPLOY_CHOICES: dict[str, list[Any]] = {"precision": ["fp32", "fp16", "int8"], "prune_ratio": [0.0, 0.25, 0.5]}


@dataclass(frozen=True)
class Candidate:
    """One sampled point: architecture + hyperparameters + augmentation."""

    space: str
    arch: dict[str, Any]
    hp: dict[str, Any]
    deploy: dict[str, Any] = field(default_factory=lambda: {"precision": "fp32", "prune_ratio": 0.0})

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "arch": self.arch, "hp": self.hp, "deploy": self.deploy}


@dataclass
class SearchSpace:
    """A named space with its choices; ``suggest`` samples it through an Optuna trial."""

    name: str = "mobilenet"
    choices: dict[str, list[Any]] = field(default_factory=dict)
    hp: dict[str, list[Any]] = field(default_factory=lambda: copy.deepcopy(HP_CHOICES))
    deploy: dict[str, list[Any]] = field(default_factory=lambda: copy.deepcopy(DEPLOY_CHOICES))

    def __post_init__(self) -> None:
        for label, given, valid in (("hyperparameter", self.hp, HP_CHOICES), ("deployment choice", self.deploy, DEPLOY_CHOICES)):
            for key, values in given.items():
                if key not in valid:
                    raise ConfigError(f"unknown {label} '{key}'; valid: {', '.join(valid)}")
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"{label} '{key}' must be a non-empty list, got {values!r}")
        self.hp = {**copy.deepcopy(HP_CHOICES), **self.hp}
        self.deploy = {**copy.deepcopy(DEPLOY_CHOICES), **self.deploy}
        bad = [p for p in self.deploy["precision"] if p not in DEPLOY_CHOICES["precision"]]
        if bad:
            raise ConfigError(f"unknown precision(s) {bad}; valid: {', '.join(DEPLOY_CHOICES['precision'])}")
        if any(not 0 <= float(r) < 1 for r in self.deploy["prune_ratio"]):
            raise ConfigError(f"prune ratios must lie in [0, 1), got {self.deploy['prune_ratio']}")
        if self.name not in DEFAULT_CHOICES:
            raise ConfigError(f"unknown search space '{self.name}'; valid spaces: {', '.join(sorted(DEFAULT_CHOICES))}")
        merged = copy.deepcopy(DEFAULT_CHOICES[self.name])
        for key, values in self.choices.items():
            if key not in merged:
                raise ConfigError(f"space '{self.name}' has no choice '{key}'; its choices: {', '.join(merged)}")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"choice '{key}' must be a non-empty list, got {values!r}")
            merged[key] = values
        self.choices = merged

    @classmethod
    def from_yaml(cls, path: Union[str, Path]) -> "SearchSpace":
        """``space: mobilenet`` plus any choices to replace, e.g. ``kernel: [3, 5]``; ``hp:`` and ``deploy:`` likewise."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read search space {path}: {one_line(exc)}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"search space {path} must be a mapping with 'space:' and choices")
        hp, deploy = data.pop("hp", None) or {}, data.pop("deploy", None) or {}
        if not isinstance(hp, dict) or not isinstance(deploy, dict):
            raise ConfigError(f"'hp:' and 'deploy:' in {path} must be mappings of choice lists")
        return cls(str(data.pop("space", "mobilenet")), data, hp, deploy)

    def with_precisions(self, available: list[str]) -> "SearchSpace":
        """This space with the precisions the target can build; an explicit choice it cannot build is an error."""
        kept = [p for p in self.deploy["precision"] if p in available]
        if not kept:
            raise ConfigError(f"none of the precisions {self.deploy['precision']} can be built here; "
                              f"valid: {', '.join(available)}")
        if self.deploy["precision"] != DEPLOY_CHOICES["precision"] and len(kept) < len(self.deploy["precision"]):
            missing = sorted(set(self.deploy["precision"]) - set(kept))
            raise ConfigError(f"precision(s) {', '.join(missing)} cannot be built here; valid: {', '.join(available)}")
        return SearchSpace(self.name, copy.deepcopy(self.choices), copy.deepcopy(self.hp),
                           {**copy.deepcopy(self.deploy), "precision": kept})

    # --- sampling --------------------------------------------------------------------------
    def suggest(self, trial: Any, discrete: bool = False) -> Candidate:
        """Sample a candidate; ``discrete`` turns the log ranges into three values (for grid search)."""
        c, h = self.choices, self.hp

        def log_range(name: str) -> float:
            lo, hi = float(h[name][0]), float(h[name][-1])
            if discrete:
                return float(trial.suggest_categorical(name, sorted({lo, float(f"{(lo * hi) ** 0.5:.3g}"), hi})))
            return float(trial.suggest_float(name, lo, hi, log=True))

        if self.name == "mobilenet":
            stages = c["stage_channels"][0]
            arch = {"resolution": trial.suggest_categorical("resolution", c["resolution"]),
                    "width": trial.suggest_categorical("width", c["width"]), "stem": c["stem"][0],
                    "stage_channels": list(stages)}
            for i in range(len(stages)):
                arch[f"depth{i}"] = trial.suggest_categorical(f"depth{i}", c["depth"])
                arch[f"kernel{i}"] = trial.suggest_categorical(f"kernel{i}", c["kernel"])
                arch[f"expand{i}"] = trial.suggest_categorical(f"expand{i}", c["expand"])
        else:
            arch = {"resolution": trial.suggest_categorical("resolution", c["resolution"]),
                    "blocks": trial.suggest_categorical("blocks", c["blocks"]),
                    "channels": trial.suggest_categorical("channels", c["channels"]),
                    "kernel": trial.suggest_categorical("kernel", c["kernel"])}
        hp = {
            "lr": log_range("lr"),
            "weight_decay": log_range("weight_decay"),
            "batch_size": trial.suggest_categorical("batch_size", h["batch_size"]),
            "optimizer": trial.suggest_categorical("optimizer", h["optimizer"]),
            "epochs": trial.suggest_int("epochs", h["epochs"][0], h["epochs"][-1]),
            "label_smoothing": trial.suggest_categorical("label_smoothing", h["label_smoothing"]),
        }
        for key in ("aug_shift", "aug_rotate", "aug_scale", "aug_erase", "aug_noise"):
            hp[key] = trial.suggest_categorical(key, h[key])
        d = self.deploy
        deploy = {"precision": trial.suggest_categorical("precision", d["precision"]),
                  "prune_ratio": float(trial.suggest_categorical("prune_ratio", d["prune_ratio"]))}
        return Candidate(self.name, arch, hp, deploy)

    def smallest(self) -> Candidate:
        """The cheapest architecture of the space (for the 'can anything meet the budget' check)."""
        c = self.choices
        if self.name == "mobilenet":
            stages = c["stage_channels"][0]
            arch: dict[str, Any] = {"resolution": min(c["resolution"]), "width": min(c["width"]), "stem": c["stem"][0],
                                    "stage_channels": list(stages)}
            for i in range(len(stages)):
                arch.update({f"depth{i}": min(c["depth"]), f"kernel{i}": min(c["kernel"]), f"expand{i}": min(c["expand"])})
        else:
            arch = {"resolution": min(c["resolution"]), "blocks": min(c["blocks"]), "channels": min(c["channels"]),
                    "kernel": min(c["kernel"])}
        return Candidate(self.name, arch, {}, {"precision": "fp32", "prune_ratio": max(self.deploy["prune_ratio"])})


# --- one description, two builds -------------------------------------------------------------

def _ch(value: float) -> int:
    return max(8, int(round(value / 8)) * 8)


def _layers(cand: Candidate, in_channels: int, keep: float = 1.0) -> list[tuple]:
    """The network as a list of layer tuples both builders walk (kind, args...).

    ``keep`` < 1 scales every inner channel count, an estimate of the network after pruning that
    share of channels (checked before training; the pruned network itself is predicted after).
    """
    a = cand.arch
    layers: list[tuple] = []
    if keep < 1.0:
        return [tuple(max(1, round(v * keep)) if i in _CHANNEL_FIELDS[layer[0]] and (n, i) != (0, 1) else v
                      for i, v in enumerate(layer)) for n, layer in enumerate(_layers(cand, in_channels))]
    if cand.space == "mobilenet":
        stem = _ch(a["stem"] * a["width"])
        layers.append(("conv", in_channels, stem, 3, 1, 1, "relu"))
        cin = stem
        for i, base in enumerate(a["stage_channels"]):
            cout = _ch(base * a["width"])
            for d in range(a[f"depth{i}"]):
                stride = 2 if d == 0 and i > 0 else 1
                layers.append(("block", cin, cout, a[f"kernel{i}"], stride, a[f"expand{i}"]))
                cin = cout
        layers.append(("head", cin))
    else:
        cin = in_channels
        for b in range(a["blocks"]):
            cout = a["channels"] * 2 ** b
            layers.append(("conv", cin, cout, a["kernel"], 1, 1, "relu"))
            if b < a["blocks"] - 1:
                layers.append(("pool",))
            cin = cout
        layers.append(("head", cin))
    return layers


# which fields of a layer tuple are channel counts that pruning shrinks (not the network's input channels)
_CHANNEL_FIELDS = {"conv": (1, 2), "block": (1, 2), "head": (1,), "pool": ()}


def candidate_graph(cand: Candidate, in_channels: int, classes: int, keep: float = 1.0,
                    input_size: Optional[tuple[int, int]] = None) -> Graph:
    """The latency predictor's view of the candidate (no export); ``keep`` < 1 estimates it pruned.

    ``input_size`` is the (height, width) of the data the network is fed: where it is not the
    candidate's resolution, the network starts with the bilinear resize candidate_module does.
    """
    r = cand.arch["resolution"]
    height, width = input_size or (r, r)
    b = GraphBuilder(f"{cand.space}", (1, in_channels, height, width))
    x = "input" if width == r else b.resize("input", r)  # candidate_module resizes on width, as here
    for layer in _layers(cand, in_channels, keep):
        if layer[0] == "conv":
            _k, _cin, cout, k, s, g, act = layer
            x = b.act(b.bn(b.conv(x, cout, k, s, g)), act)
        elif layer[0] == "block":
            _k, cin, cout, k, s, e = layer
            h = b.relu6(b.bn(b.conv(x, cin * e, 1))) if e != 1 else x
            h = b.relu6(b.bn(b.dwconv(h, k, s)))
            h = b.bn(b.conv(h, cout, 1))
            x = b.add(h, x) if s == 1 and cin == cout else h
        elif layer[0] == "pool":
            x = b.pool(x, "maxpool", 2, 2)
        else:
            x = b.fc(b.gap(x), classes)
    return b.build(x)


def candidate_module(cand: Candidate, in_channels: int, classes: int) -> Any:
    """The PyTorch module that is trained (input is resized to the candidate's resolution inside)."""
    torch = require("torch", "torch")
    nn = torch.nn

    def conv_bn(cin: int, cout: int, k: int, s: int, groups: int = 1, act: Optional[Any] = None) -> list:
        layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups), nn.BatchNorm2d(cout)]
        return layers + ([act] if act is not None else [])

    class Block(nn.Module):  # type: ignore[name-defined]
        def __init__(self, cin: int, cout: int, k: int, s: int, e: int) -> None:
            super().__init__()
            hidden = cin * e
            layers = conv_bn(cin, hidden, 1, 1, act=nn.ReLU6()) if e != 1 else []
            layers += conv_bn(hidden, hidden, k, s, groups=hidden, act=nn.ReLU6()) + conv_bn(hidden, cout, 1, 1)
            self.body = nn.Sequential(*layers)
            self.residual = s == 1 and cin == cout

        def forward(self, x: Any) -> Any:
            return x + self.body(x) if self.residual else self.body(x)

    class Net(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.resolution = cand.arch["resolution"]
            layers: list[Any] = []
            for layer in _layers(cand, in_channels):
                if layer[0] == "conv":
                    _k, cin, cout, k, s, g, _act = layer
                    layers += conv_bn(cin, cout, k, s, g, act=nn.ReLU())
                elif layer[0] == "block":
                    layers.append(Block(*layer[1:]))
                elif layer[0] == "pool":
                    layers.append(nn.MaxPool2d(2, 2, padding=1))  # same output size as GraphBuilder.pool
                else:
                    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(layer[1], classes)]
            self.body = nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            if x.shape[-1] != self.resolution:
                x = torch.nn.functional.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear",
                                                    align_corners=False)
            return self.body(x)

    return Net()
