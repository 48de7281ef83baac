"""Train and evaluate one candidate with its hyperparameters and augmentation policy (seeded)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from edgetune._lazy import require
from edgetune.data import Dataset
from edgetune.search._space import Candidate


def _augment(torch: Any, x: Any, hp: dict, generator: Any) -> Any:
    """Random shifts of up to ``aug_shift`` pixels and Gaussian noise of ``aug_noise`` std."""
    shift = int(hp.get("aug_shift", 0))
    if shift:
        dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=generator))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
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
