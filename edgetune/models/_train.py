"""A short, seeded training loop for classifiers on a Dataset (used by the zoo and the quickstart)."""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from edgetune._lazy import require
from edgetune.data import Dataset
from edgetune.errors import DatasetError


def train_classifier(module: Any, data: Dataset, seconds: float, seed: int = 0, batch_size: int = 64,
                     epochs: Optional[int] = None) -> float:
    """Train ``module`` with Adam for about ``seconds`` (or ``epochs`` full passes, whichever ends first).

    Returns validation top-1 accuracy on a seeded 20% split.
    """
    torch = require("torch", "torch")
    if data.y is None:
        raise DatasetError(f"dataset '{data.name}' has no labels; training needs labels 'y'")
    torch.manual_seed(seed)
    train, val = data.split(0.2, seed)
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    deadline = time.perf_counter() + seconds
    module.train()
    done_epochs = 0
    while time.perf_counter() < deadline and (epochs is None or done_epochs < epochs):
        done_epochs += 1
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss_fn(module(x[idx]), y[idx]).backward()
            optimizer.step()
            if time.perf_counter() >= deadline:
                break
    module.eval()
    with torch.no_grad():
        predictions = module(torch.from_numpy(val.x)).argmax(1).numpy()
    return float(np.mean(predictions == val.y))
