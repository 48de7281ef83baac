"""Train and evaluate one candidate with its hyperparameters and augmentation policy (seeded)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from edgetune._lazy import require
from edgetune.data import Dataset
from edgetune.search._space import Candidate


def _augment(torch: Any, x: Any, hp: dict, generator: Any) -> Any:
    """The trial's augmentation policy on a batch (N, C, H, W), per sample, in torch.

    ``aug_shift`` pixels, ``aug_rotate`` degrees and ``aug_scale`` relative zoom form one random
    affine warp per image; ``aug_erase`` is the probability of zeroing a random square of a
    quarter of the image side; ``aug_noise`` the std of added Gaussian noise.
    """
    n, _c, h, w = x.shape
    shift, rotate = float(hp.get("aug_shift", 0)), float(hp.get("aug_rotate", 0))
    scale = float(hp.get("aug_scale", 0.0))

    def uniform(low: float, high: float) -> Any:
        return low + (high - low) * torch.rand(n, generator=generator)

    if shift or rotate or scale:
        angle = uniform(-rotate, rotate) * (torch.pi / 180)
        zoom = uniform(1 - scale, 1 + scale)
        tx, ty = uniform(-shift, shift) * 2 / w, uniform(-shift, shift) * 2 / h  # pixels -> [-1, 1] units
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    erase = float(hp.get("aug_erase", 0.0))
    if erase:
        side = max(1, h // 4)
        hit = torch.rand(n, generator=generator) < erase
        top = torch.randint(0, h - side + 1, (n,), generator=generator)
        left = torch.randint(0, w - side + 1, (n,), generator=generator)
        rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        box = ((rows >= top.view(n, 1, 1)) & (rows < (top + side).view(n, 1, 1))
               & (cols >= left.view(n, 1, 1)) & (cols < (left + side).view(n, 1, 1)) & hit.view(n, 1, 1))
        x = x.masked_fill(box.unsqueeze(1), 0.0)
    noise = float(hp.get("aug_noise", 0.0))
    if noise:
        x = x + noise * torch.randn(x.shape, generator=generator)
    return x


def train_candidate(module: Any, cand: Candidate, train: Dataset, val: Dataset, seed: int,
                    report: Optional[Callable[[int, float], None]] = None, max_epochs: Optional[int] = None) -> float:
    """Train ``module`` per ``cand.hp``; returns validation top-1 accuracy.

    ``report(epoch, accuracy)`` is called after every epoch (the pruner's learning curve; it may
    raise optuna.TrialPruned to stop a bad trial early).
    """
    torch = require("torch", "torch")
    hp = cand.hp
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    if hp["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(module.parameters(), lr=hp["lr"] * 10, momentum=0.9, weight_decay=hp["weight_decay"])
    else:
        optimizer = torch.optim.AdamW(module.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=hp["label_smoothing"])
    epochs = min(hp["epochs"], max_epochs) if max_epochs else hp["epochs"]
    accuracy = 0.0
    for epoch in range(epochs):
        module.train()
        for idx in torch.randperm(len(x), generator=generator).split(hp["batch_size"]):
            optimizer.zero_grad()
            loss_fn(module(_augment(torch, x[idx], hp, generator)), y[idx]).backward()
            optimizer.step()
        accuracy = evaluate(module, val)
        if report is not None:
            report(epoch, accuracy)
    return accuracy


def evaluate(module: Any, data: Dataset) -> float:
    torch = require("torch", "torch")
    module.eval()
    with torch.no_grad():
        pred = module(torch.from_numpy(data.x)).argmax(1).numpy()
    return float(np.mean(pred == data.y))
