"""Border shares for runtimes without a per-node profiler: how much of a kernel timed alone is graph-border cost.

A kernel timed as its own graph also pays the runtime's layout conversion at its borders (ONNX
Runtime's NCHWc reorders, for one). The profiler times kernels alone and repeated inside a
shape-preserving pair; the share of the alone-latency the repeats do not pay is learnt per border
group and removed when the kernel is predicted inside a network.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgetune.errors import one_line
from edgetune.predict._base import ProfileError
from edgetune.predict._fusion import FusionRules, split_kernels
from edgetune.predict._graph import graph_from_dict
from edgetune.predict._hardware import GENERIC_HARDWARE, ProfileHardware
from edgetune.predict._regress import FLOOR_MS
from edgetune.predict._sampling import BORDER_GROUPS, border_group


def _border_x(elems: float, isolated_ms: float) -> list[float]:
    return [math.log1p(elems), math.log(max(isolated_ms, FLOOR_MS))]


def border_share(correction: dict, group: str, kernels: list, isolated_ms: np.ndarray) -> np.ndarray:
    """Share of each kernel's isolated latency that is layout conversion at the graph borders
    (learnt per border group; 0 without a model), clipped to [0, 0.8]."""
    model = correction.get(group)
    if model is None or not len(kernels):
        return np.zeros(len(kernels))
    x = np.array([_border_x(k.head.in_elems + k.tail.out_elems, t) for k, t in zip(kernels, isolated_ms)])
    return np.clip(model.predict(x, num_threads=1), 0.0, 0.8)


def in_network_ms(predicted_ms: float, kernel, correction: dict) -> float:  # type: ignore[no-untyped-def]
    """A kernel's predicted cost inside a network: its isolated cost less its border share."""
    share = border_share(correction, border_group(kernel.head.kind), [kernel], np.array([predicted_ms]))
    return float(predicted_ms * (1.0 - share[0]))


def fit_borders(borders: list[dict]) -> dict:
    """Per border group, a small LightGBM model of the share of a kernel's isolated latency that is
    border cost, from (elements in+out, isolated latency), fitted on the (alone, repeated) pairs."""
    import lightgbm as lgb

    correction: dict = {}
    for group in BORDER_GROUPS:
        mine = [b for b in borders if b["group"] == group and b["repeats"] > 1 and b["single_ms"] > 0]
        if len(mine) < 10:
            continue
        inside = np.array([(b["repeated_ms"] - b["single_ms"]) / (b["repeats"] - 1) for b in mine])
        single = np.array([b["single_ms"] for b in mine])
        share = np.clip((single - inside) / single, -0.2, 0.9)
        x = np.array([_border_x(b["in_elems"] + b["out_elems"], b["single_ms"]) for b in mine])
        params = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 8,
                  "min_data_in_bin": 1, "verbose": -1, "num_threads": 1, "deterministic": True, "force_row_wise": True}
        correction[group] = lgb.train(params, lgb.Dataset(x, share, params={"verbose": -1}), num_boost_round=150)
    return correction


def save_borders(correction: dict, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for group, model in correction.items():
        (folder / f"border-{group}.lgb.txt").write_text(model.model_to_string())
    return {"groups": sorted(correction), "model": "share of isolated latency that is border cost (LightGBM)"}


def load_borders(folder: Path, groups: list) -> dict:
    import lightgbm as lgb

    out = {}
    for group in groups:
        path = folder / f"border-{group}.lgb.txt"
        try:
            out[group] = lgb.Booster(model_str=path.read_text())
        except Exception as exc:  # noqa: BLE001
            raise ProfileError(f"cannot read {path}: {one_line(exc, 200)}; "
                               "re-run `edgetune profile --retrain`") from None
    return out


def check_on_chains(chains: list[dict], models: dict, rules: FusionRules, overhead_ms: float, correction: dict,
                    hardware: ProfileHardware = GENERIC_HARDWARE) -> dict:
    """How the finished predictor does on the random chains measured during profiling (not used in fitting)."""
    pred, meas = [], []
    for chain in chains:
        kernels = split_kernels(graph_from_dict(chain["graph"]), rules)
        if any(k.head.kind not in models for k in kernels):
            continue
        values = [float(models[k.head.kind].predict(np.array([hardware.features(k)]))[0]) for k in kernels]
        pred.append(overhead_ms + sum(in_network_ms(v, k, correction) for v, k in zip(values, kernels)))
        meas.append(chain["latency_ms"])
    if not meas:
        return {"chains": 0}
    rel = np.array(pred) / np.array(meas) - 1
    return {"chains": len(meas), "within_10pct": round(float(np.mean(np.abs(rel) <= 0.10)), 4),
            "median_error": round(float(np.median(rel)), 4)}
