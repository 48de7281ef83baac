"""How another machine's kernels differ from a profile's, kernel by kernel: the residual model of ``_adapt``.

Two CPUs do not differ by one factor per kind of kernel. Timed on an AMD EPYC (Zen 4) against a
profile taken on an Intel Xeon, both AVX-512 at one thread, a compute-bound 3x3 conv ran 1.6-1.8x
slower, a small one 1.2x, a grouped conv 0.9x, a memory-bound fully connected layer with millions of
weights 0.5-0.7x and a small one 1.25x (``benchmarks/predictor/README.md``, 2026-12-04). What sets the
ratio is where the kernel sits between compute and memory, which the profile's own kernel features
describe. So the correction is a small gradient-boosted model (LightGBM, as the profile's regressors)
of

    log(this machine's in-network kernel cost / the profile's prediction of it)

on the kernel's features, its group, its arithmetic intensity (MACs per byte it reads and writes)
and its predicted cost, fitted on the kernels of the reference networks, whose in-network costs
the runtime's per-node profiler gives (hundreds of kernels from 20 networks). Each kernel's
prediction is multiplied by its factor before the profile's end-to-end model adds them up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgetune._lazy import require
from edgetune.predict._base import ProfileError
from edgetune.predict._fusion import Kernel
from edgetune.predict._hardware import ProfileHardware, _shape_key

MIN_KERNEL_MS = 0.003  # kernels under 3 us on either side are timer and bookkeeping noise: not fitted on
# 100 rounds at 0.1 scored as 200 at 0.05 on four truths (2026-12-04) and predict in half the time
_PARAMS = {"objective": "regression", "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20,
           "min_data_in_bin": 1, "lambda_l2": 1.0, "verbose": -1, "num_threads": 1, "deterministic": True,
           "force_row_wise": True, "seed": 0}
_ROUNDS = 100
MIN_KERNELS = 40  # two leaves' worth


def intensity(kernel: Kernel) -> float:
    """MACs per byte of fp32 inputs, outputs and weights: high for a compute-bound kernel."""
    op = kernel.head
    return (op.macs + 1.0) / (4.0 * (op.in_elems + op.out_elems + op.params) + 1.0)


_ROWS_KEPT = 100_000


class _RowTable:
    """The distinct static rows of one (hardware, groups) in one growing matrix, found by kernel shape: a
    search predicts thousands of networks built of the same few shapes, so most rows are a lookup."""

    def __init__(self) -> None:
        self.index: dict[tuple, int] = {}
        self.matrix = np.zeros((0, 0))

    def rows(self, kernels: Sequence[Kernel], hardware: ProfileHardware, groups: tuple[str, ...]) -> np.ndarray:
        at, new = [], []
        pending: dict[tuple, int] = {}  # shapes first seen here join the index once their rows are in the matrix
        for kernel in kernels:
            key = _shape_key(kernel)
            position = self.index.get(key, pending.get(key))
            if position is None:
                new.append(_static_row(kernel, hardware, groups))
                position = pending[key] = len(self.index) + len(pending)
            at.append(position)
        if new:
            self._append(np.array(new, dtype=float))
            self.index.update(pending)
        return self.matrix[at]

    def _append(self, rows: np.ndarray) -> None:
        used = len(self.index)
        if len(self.matrix) < used + len(rows):  # room doubles: appending stays linear over a search
            grown = np.zeros((max(2 * len(self.matrix), used + len(rows), 64), rows.shape[1]))
            if used:
                grown[:used] = self.matrix[:used]
            self.matrix = grown
        self.matrix[used:used + len(rows)] = rows


_TABLES: dict[tuple, _RowTable] = {}  # (hardware, groups) -> its rows


def _static_row(kernel: Kernel, hardware: ProfileHardware, groups: tuple[str, ...]) -> tuple[float, ...]:
    """A kernel's residual inputs that depend on its shape alone."""
    from edgetune.predict._adapt import group_of  # _adapt builds on this module

    group = group_of(kernel.kind)
    return (*(float(group == g) for g in groups), math.log2(intensity(kernel)), float(kernel.head.groups > 1),
            math.log2(kernel.head.params + 1.0), *hardware.features(kernel))


def residual_rows(kernels: Sequence[Kernel], predicted_ms: "Sequence[float] | np.ndarray", hardware: ProfileHardware,
                  groups: Sequence[str]) -> np.ndarray:
    """The residual model's input per kernel (see the module): the group one-hots, the roofline position,
    the profile's kernel features, and last the log2 of the predicted cost."""
    if not len(kernels):
        return np.zeros((0, 0))
    names = tuple(groups)
    table = _TABLES.get((hardware, names))
    if table is None or len(table.index) >= _ROWS_KEPT:
        table = _TABLES[(hardware, names)] = _RowTable()
    predicted = np.log2(np.maximum(np.asarray(predicted_ms, dtype=float), 1e-4))
    return np.hstack([table.rows(kernels, hardware, names), predicted[:, None]])


@dataclass(frozen=True)
class KernelResidual:
    """This machine's cost of a kernel over the source profile's prediction of it, from the kernel's features."""

    booster: Any  # lightgbm.Booster
    groups: tuple[str, ...]

    @classmethod
    def fit(cls, rows: np.ndarray, measured_ms: np.ndarray, predicted_ms: np.ndarray, groups: Sequence[str]) -> "KernelResidual":
        """Fit on the kernels both timed and predicted above MIN_KERNEL_MS, weighted by their measured cost."""
        lgb = require("lightgbm", "all")
        keep = (measured_ms > MIN_KERNEL_MS) & (predicted_ms > MIN_KERNEL_MS)
        if int(keep.sum()) < MIN_KERNELS:
            raise ProfileError(f"adaptation needs at least {MIN_KERNELS} kernels timed inside the reference networks, "
                               f"got {int(keep.sum())}")
        data = lgb.Dataset(rows[keep], np.log(measured_ms[keep] / predicted_ms[keep]), weight=measured_ms[keep],
                           params={"verbose": -1})
        return cls(lgb.train(_PARAMS, data, num_boost_round=_ROUNDS), tuple(groups))

    def factors(self, rows: np.ndarray) -> np.ndarray:
        """Per kernel row: the multiplier on the source profile's prediction."""
        return np.exp(self.booster.predict(rows, num_threads=1)) if len(rows) else np.ones(0)

    def correct(self, kernels: Sequence[Kernel], predicted_ms: Sequence[float], hardware: ProfileHardware) -> np.ndarray:
        """The kernels' predicted costs on this machine."""
        predicted = np.asarray(predicted_ms, dtype=float)
        return predicted * self.factors(residual_rows(kernels, predicted, hardware, self.groups))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: LightGBM's text model, never a pickle."""
        return {"kind": "lightgbm", "groups": list(self.groups), "model": self.booster.model_to_string()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KernelResidual":
        lgb = require("lightgbm", "all")
        return cls(lgb.Booster(model_str=data["model"]), tuple(data["groups"]))
