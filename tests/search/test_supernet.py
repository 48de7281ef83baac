from __future__ import annotations

import random

from edgetune.data import Dataset, load_dataset
from edgetune.search import SearchSpace
from edgetune.search._supernet import _arch, build_supernet, ranking_agreement, score_subnet, train_supernet

SPACE = SearchSpace("mobilenet", {"resolution": [8], "width": [0.5, 1.0], "depth": [1, 2], "kernel": [3, 5], "expand": [1, 3],
                                   "stage_channels": [[8, 16]]})


def _digits(n: int = 600) -> Dataset:
    """A seeded subset of digits: enough to tell sub-networks apart, quick to train on two cores."""
    data = load_dataset("digits")
    return Dataset("digits-subset", data.x[:n], data.y[:n])  # type: ignore[index]


def test_subnets_share_weights_and_score() -> None:
    train, val = _digits().split(0.2, 0)
    net = build_supernet(SPACE, 1, 10)
    small, big = _arch(SPACE, random.Random(0), "min"), _arch(SPACE, random.Random(0), "max")
    import torch

    assert net(torch.zeros(2, 1, 8, 8), small).shape == (2, 10) and net(torch.zeros(2, 1, 8, 8), big).shape == (2, 10)
    before_small, before_big = score_subnet(net, small, train, val), score_subnet(net, big, train, val)
    train_supernet(net, SPACE, train, epochs=3)
    after_small, after_big = score_subnet(net, small, train, val), score_subnet(net, big, train, val)
    # sandwich training lifts both ends of the space from chance (10 classes), through shared weights
    assert after_big > max(0.5, before_big + 0.2) and after_small > before_small + 0.05


def test_ranking_agreement_reports_kendall_tau() -> None:
    scores = ranking_agreement(SPACE, _digits(400), samples=4, standalone=3, supernet_epochs=1, standalone_epochs=1)
    assert len(scores.supernet_accuracy) == 4 and sum(a is not None for a in scores.standalone_accuracy) == 3
    assert scores.kendall_tau is None or -1.0 <= scores.kendall_tau <= 1.0
