"""A deterministic predictor for search tests: latency proportional to MACs (labelled predicted)."""

from __future__ import annotations

from typing import Sequence

from edgetune.predict import Graph, LatencyEstimate, Predictor


class MacsPredictor(Predictor):
    name = "macs-fake"

    def __init__(self, ms_per_mmac: float = 0.05) -> None:
        self.ms_per_mmac = ms_per_mmac

    def predict_many(self, graphs: Sequence[Graph]) -> list[LatencyEstimate]:
        out = []
        for g in graphs:
            ms = 0.01 + g.macs / 1e6 * self.ms_per_mmac
            out.append(LatencyEstimate(g.name, ms, ms * 0.9, ms * 1.1, self.name))
        return out
