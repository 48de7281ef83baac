"""Accuracy of a candidate: top-1 on labelled data, or agreement with the fp32 reference without labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from edgetune.runners import Session


@dataclass(frozen=True)
class QualityData:
    """Inputs (N, ...) to judge candidates on; labels make it top-1 accuracy, none make it agreement."""

    x: np.ndarray
    y: Optional[np.ndarray]
    source: str
    is_random: bool = False

    @property
    def labelled(self) -> bool:
        return self.y is not None


def first_outputs(session: Session, x: np.ndarray, input_name: str) -> np.ndarray:
    """The first output for every sample, run one sample (batch 1) at a time, stacked."""
    feeds = [{input_name: np.ascontiguousarray(x[i : i + 1], dtype=np.float32)} for i in range(len(x))]
    return np.stack([np.asarray(outputs[0], dtype=np.float64).reshape(-1) for outputs in session.run_many(feeds)])


def judge(outputs: np.ndarray, reference: np.ndarray, data: QualityData, max_drop_points: float) -> dict[str, Any]:
    """Compare a candidate's outputs with the reference's on ``data``; ``allowed`` applies the budget."""
    predicted, expected = outputs.argmax(1), reference.argmax(1)
    agreement = float(np.mean(predicted == expected))
    # A pick the reference itself scores within 1% of its logit range of its own top-1 is a near-tie,
    # not a disagreement (a random-weight network's logits tie to 1e-4 and int8 rounding flips them).
    rows = np.arange(len(reference))
    span = reference.max(1) - reference.min(1)
    near_tie = reference[rows, expected] - reference[rows, predicted] <= 0.01 * np.where(span > 0, span, 1.0)
    tolerant = float(np.mean((predicted == expected) | near_tie))
    norms = np.linalg.norm(outputs, axis=1) * np.linalg.norm(reference, axis=1)
    cosine = float(np.mean(np.sum(outputs * reference, axis=1) / np.where(norms > 0, norms, 1.0)))
    result: dict[str, Any] = {
        "data": data.source,
        "samples": int(len(outputs)),
        "top1_agreement": agreement,
        "top1_agreement_tolerant": tolerant,
        "mean_cosine": cosine,
        "max_abs_err": float(np.max(np.abs(outputs - reference))),
    }
    if data.labelled:
        accuracy = float(np.mean(predicted == data.y))
        reference_accuracy = float(np.mean(expected == data.y))
        drop = (reference_accuracy - accuracy) * 100
        result.update(metric="top1_accuracy", value=accuracy, reference_value=reference_accuracy)
    else:
        drop = (1 - tolerant) * 100
        result.update(metric="top1_agreement", value=tolerant, reference_value=1.0)
    result["drop_points"] = drop
    result["max_drop_points"] = max_drop_points
    result["allowed"] = bool(drop <= max_drop_points + 1e-9)
    return result
