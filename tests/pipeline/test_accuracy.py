"""Judging candidates: labelled top-1, agreement with fp32, and near-ties that are not disagreements."""

from __future__ import annotations

import numpy as np

from edgetune.pipeline._accuracy import QualityData, judge


def test_labelled_accuracy_and_budget() -> None:
    reference = np.array([[0.0, 5.0], [5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    candidate = np.array([[0.0, 5.0], [5.0, 0.0], [5.0, 0.0], [5.0, 0.0]])
    data = QualityData(x=np.zeros((4, 1)), y=np.array([1, 0, 1, 0]), source="t")
    result = judge(candidate, reference, data, max_drop_points=1.0)
    assert result["value"] == 0.75 and result["reference_value"] == 1.0
    assert result["drop_points"] == 25.0 and not result["allowed"]


def test_agreement_counts_real_flips_but_not_near_ties() -> None:
    data = QualityData(x=np.zeros((2, 1)), y=None, source="t")
    tie = np.array([[1.0, 1.00001, -3.0], [1.0, 1.00001, -3.0]])  # fp32 picks class 1 by 1e-5
    flipped = np.array([[1.00001, 1.0, -3.0], [1.00001, 1.0, -3.0]])
    result = judge(flipped, tie, data, max_drop_points=1.0)
    assert result["top1_agreement"] == 0.0 and result["top1_agreement_tolerant"] == 1.0 and result["allowed"]
    clear = np.array([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    wrong = np.array([[0.0, 5.0, 0.0], [0.0, 5.0, 0.0]])
    assert not judge(wrong, clear, data, max_drop_points=1.0)["allowed"]
