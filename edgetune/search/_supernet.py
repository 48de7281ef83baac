"""A weight-sharing supernet for the mobilenet space (Once-for-All style).

One network at the largest setting of every choice is trained once with the sandwich rule
(each step: the largest, the smallest and two random sub-networks). A sub-network uses the
first ``depth`` blocks of each stage, the centre ``k x k`` of each depthwise kernel, the first
``cin * expand`` hidden channels and the first ``width``-scaled output channels; its batch-norm
statistics are re-estimated on a few training batches before it is scored (as OFA does).
Scores rank thousands of architectures without training each; ``ranking_agreement`` checks the
ranking against stand-alone training on a sample (Kendall tau).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from edgetune._lazy import require
from edgetune.data import Dataset
from edgetune.errors import ConfigError
from edgetune.search._space import Candidate, SearchSpace, _ch


def _torch() -> Any:
    return require("torch", "torch")


def build_supernet(space: SearchSpace, in_channels: int, classes: int) -> Any:
    """The mobilenet space at the largest setting of every choice; ``net(x, arch)`` runs the sub-network ``arch``."""
    torch = _torch()
    c = space.choices
    if space.name != "mobilenet":
        raise ConfigError("the supernet covers the mobilenet space")
    kmax = max(c["kernel"])

    class SuperNet(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            _add_layers(self, torch.nn, c, in_channels, classes)

        def forward(self, x: Any, arch: dict) -> Any:
            return _forward(self, torch.nn.functional, x, arch, kmax)

    return SuperNet()


def _add_layers(net: Any, nn: Any, c: dict[str, Any], in_channels: int, classes: int) -> None:
    """The largest network of the space on ``net``: every sub-network's weights are slices of these."""
    stages = c["stage_channels"][0]
    kmax, emax, dmax, wmax = max(c["kernel"]), max(c["expand"]), max(c["depth"]), max(c["width"])
    stem = _ch(c["stem"][0] * wmax)
    net.stem = nn.Conv2d(in_channels, stem, 3, 1, 1)
    net.stem_bn = nn.BatchNorm2d(stem)
    net.blocks = nn.ModuleList()
    cin = stem
    for base in stages:
        cout = _ch(base * wmax)
        stage = nn.ModuleList()
        for d in range(dmax):
            hidden = (cin if d == 0 else cout) * emax
            b_in = cin if d == 0 else cout
            stage.append(nn.ModuleDict({
                "expand": nn.Conv2d(b_in, hidden, 1), "expand_bn": nn.BatchNorm2d(hidden),
                "dw": nn.Conv2d(hidden, hidden, kmax, 1, kmax // 2, groups=hidden), "dw_bn": nn.BatchNorm2d(hidden),
                "project": nn.Conv2d(hidden, cout, 1), "project_bn": nn.BatchNorm2d(cout)}))
        net.blocks.append(stage)
        cin = cout
    net.fc = nn.Linear(cin, classes)


def _bn(F: Any, bn: Any, x: Any) -> Any:
    """Batch norm over the first channels of ``bn`` (as many as ``x`` has)."""
    n = x.shape[1]
    return F.batch_norm(x, bn.running_mean[:n], bn.running_var[:n], bn.weight[:n], bn.bias[:n],
                        bn.training, bn.momentum if bn.momentum is not None else 0.1, bn.eps)


def _forward(net: Any, F: Any, x: Any, arch: dict, kmax: int) -> Any:
    """The sub-network ``arch`` of ``net``: the first blocks, channels and kernel centres of each stage."""
    r = arch["resolution"]
    if x.shape[-1] != r:
        x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
    stem = _ch(arch["stem"] * arch["width"])
    x = F.relu(_bn(F, net.stem_bn, F.conv2d(x, net.stem.weight[:stem], net.stem.bias[:stem], 1, 1)))
    cin = stem
    for i, (base, stage) in enumerate(zip(arch["stage_channels"], net.blocks)):
        cout = _ch(base * arch["width"])
        k, e = arch[f"kernel{i}"], arch[f"expand{i}"]
        for d in range(arch[f"depth{i}"]):
            stride = 2 if d == 0 and i > 0 else 1
            x = _block(F, stage[d], x, cin, cout, k, e, kmax, stride)
            cin = cout
    x = x.mean(dim=(2, 3))
    return F.linear(x, net.fc.weight[:, :cin], net.fc.bias)


def _block(F: Any, m: Any, x: Any, cin: int, cout: int, k: int, e: int, kmax: int, stride: int) -> Any:
    """One inverted-residual block of a sub-network: expand (unless e = 1), k x k depthwise, project."""
    hidden = cin * e
    h = x
    if e != 1:
        h = F.relu6(_bn(F, m["expand_bn"], F.conv2d(x, m["expand"].weight[:hidden, :cin], m["expand"].bias[:hidden])))
    else:
        hidden = cin
    off = (kmax - k) // 2
    w = m["dw"].weight[:hidden, :, off:off + k, off:off + k]
    h = F.relu6(_bn(F, m["dw_bn"], F.conv2d(h, w, m["dw"].bias[:hidden], stride, k // 2, groups=hidden)))
    h = _bn(F, m["project_bn"], F.conv2d(h, m["project"].weight[:cout, :hidden], m["project"].bias[:cout]))
    return x + h if stride == 1 and cin == cout else h


@dataclass
class SupernetScores:
    candidates: list[Candidate]
    supernet_accuracy: list[float]
    standalone_accuracy: list[Optional[float]]
    kendall_tau: Optional[float]


def _arch(space: SearchSpace, rng: random.Random, pick: str = "random") -> dict:
    c = space.choices
    choose = {"max": max, "min": min}.get(pick)
    stages = c["stage_channels"][0]
    arch: dict[str, Any] = {"resolution": choose(c["resolution"]) if choose else rng.choice(c["resolution"]),
                            "width": choose(c["width"]) if choose else rng.choice(c["width"]), "stem": c["stem"][0],
                            "stage_channels": list(stages)}
    for i in range(len(stages)):
        for key in ("depth", "kernel", "expand"):
            arch[f"{key}{i}"] = choose(c[key]) if choose else rng.choice(c[key])
    return arch


def train_supernet(net: Any, space: SearchSpace, train: Dataset, epochs: int = 4, seed: int = 0, lr: float = 3e-3,
                   batch_size: int = 64) -> None:
    """Sandwich rule: every step trains the largest, the smallest and two random sub-networks."""
    torch = _torch()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            for arch in (_arch(space, rng, "max"), _arch(space, rng, "min"), _arch(space, rng), _arch(space, rng)):
                loss_fn(net(x[idx], arch), y[idx]).backward()
            optimizer.step()


def score_subnet(net: Any, arch: dict, train: Dataset, val: Dataset, calib_samples: int = 512) -> float:
    """Validation accuracy of a sub-network after re-estimating its batch-norm statistics."""
    torch = _torch()
    state = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0  # the statistics of one large calibration batch replace the shared ones
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(train.x[:calib_samples]), arch)
        net.eval()
        pred = net(torch.from_numpy(val.x), arch).argmax(1).numpy()
    net.load_state_dict({**net.state_dict(), **state})
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.1
    return float(np.mean(pred == val.y))


def ranking_agreement(space: SearchSpace, data: Dataset, samples: int = 8, standalone: int = 6, supernet_epochs: int = 4,
                      standalone_epochs: int = 4, seed: int = 0) -> SupernetScores:
    """Rank ``samples`` architectures by supernet score; train ``standalone`` of them alone; Kendall tau."""
    from scipy.stats import kendalltau

    from edgetune.search._space import candidate_module
    from edgetune.search._train import train_candidate

    train, val = data.split(0.2, seed)
    in_ch, classes = int(data.x.shape[1]), int(data.y.max()) + 1  # type: ignore[union-attr]
    net = build_supernet(space, in_ch, classes)
    train_supernet(net, space, train, supernet_epochs, seed)
    rng = random.Random(seed + 1)
    archs = [_arch(space, rng) for _ in range(samples)]
    scores = [score_subnet(net, a, train, val) for a in archs]
    hp = {"lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64, "optimizer": "adam", "epochs": standalone_epochs,
          "label_smoothing": 0.0, "aug_shift": 0, "aug_noise": 0.0}
    cands = [Candidate("mobilenet", a, hp) for a in archs]
    alone: list[Optional[float]] = [None] * samples
    for i in range(min(standalone, samples)):
        alone[i] = train_candidate(candidate_module(cands[i], in_ch, classes), cands[i], train, val, seed)
    pairs = [(s, a) for s, a in zip(scores, alone) if a is not None]
    tau = float(kendalltau([p[0] for p in pairs], [p[1] for p in pairs]).statistic) if len(pairs) >= 3 else None
    return SupernetScores(cands, scores, alone, None if tau is None or np.isnan(tau) else tau)
