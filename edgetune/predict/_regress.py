"""Per-kernel-type regressors (LightGBM), stored as LightGBM's text model plus JSON: never pickles.

Each head kind gets a gradient-boosted tree ensemble on log latency. A small bag of models
(different seeds and row subsamples) gives the disagreement the adaptive sampler uses; the
saved predictor keeps one model per kind and its held-out relative error for intervals.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgetune._lazy import require
from edgetune.errors import ModelError, one_line

FLOOR_MS = 5e-4  # below half a microsecond a kernel is wall-clock timer noise (a simulator's floor is a cycle)
ROOFLINE_TERMS = ("1", "macs", "moved")
ARRAY_TERM = "array_cycles"  # a systolic array's analytic cycles (``_hardware``), the column after BASE_FEATURES

_PARAMS = {"objective": "regression", "learning_rate": 0.12, "num_leaves": 15, "min_data_in_leaf": 3,
           "min_data_in_bin": 1, "feature_fraction": 0.9, "lambda_l2": 1.0, "verbose": -1, "num_threads": 1,
           "deterministic": True, "force_row_wise": True}
# 150 rounds at 0.12 fit as well as 400 at 0.05 did (the same held-out errors and benchmark scores on
# the 2026-12-03 profile) and predict 2.7x faster: prediction speed is a goal of its own
_ROUNDS = 150


def _lgb():  # type: ignore[no-untyped-def]
    return require("lightgbm", "all")


def bag_rows(n: int, seed: int, subsample: float) -> np.ndarray:
    """The rows a bagged member is fitted on (all of them when ``subsample`` >= 1)."""
    if subsample >= 1:
        return np.arange(n)
    return np.random.default_rng(seed).choice(n, max(2, int(n * subsample)), replace=False)


def fit_booster(x: np.ndarray, y_ms: np.ndarray, seed: int = 0, subsample: float = 1.0, rounds: int = _ROUNDS):  # type: ignore[no-untyped-def]
    """Fit one LightGBM booster on log latency (rows subsampled for bagging when ``subsample`` < 1)."""
    lgb = _lgb()
    rows = bag_rows(len(x), seed, subsample)
    data = lgb.Dataset(x[rows], np.log(np.maximum(y_ms[rows], FLOOR_MS)), params={"verbose": -1})
    return lgb.train({**_PARAMS, "seed": seed}, data, num_boost_round=rounds)


def _baseline_terms(x: np.ndarray, terms: Sequence[str] = ROOFLINE_TERMS) -> np.ndarray:
    """Columns 1, MACs, elements moved (and array cycles): a roofline-style linear baseline the trees correct."""
    from edgetune.predict._sampling import BASE_FEATURES as NAMES

    columns = {"1": lambda: np.ones(len(x)), "macs": lambda: np.expm1(x[:, NAMES.index("log_macs")]),
               "moved": lambda: np.expm1(x[:, NAMES.index("log_in")]) + np.expm1(x[:, NAMES.index("log_out")]),
               ARRAY_TERM: lambda: np.expm1(x[:, len(NAMES)])}
    return np.stack([columns[t]() for t in terms], axis=1)


def fit_baseline(x: np.ndarray, y_ms: np.ndarray, terms: Sequence[str] = ROOFLINE_TERMS,
                 floor_ms: float = FLOOR_MS) -> list[float]:
    """Non-negative a + b * MACs + c * elements (+ d * array cycles), fitted for relative error
    (rows weighted by 1 / latency^2)."""
    from scipy.optimize import nnls

    design = _baseline_terms(x, terms)
    weight = 1.0 / np.maximum(y_ms, floor_ms)
    coef, _ = nnls(design * weight[:, None], y_ms * weight)
    if not np.any(coef > 0):
        coef = np.array([float(np.median(y_ms))] + [0.0] * (len(terms) - 1))
    return [float(c) for c in coef]


def baseline_ms(x: np.ndarray, coef: Sequence[float], terms: Sequence[str] = ROOFLINE_TERMS,
                floor_ms: float = FLOOR_MS) -> np.ndarray:
    return np.maximum(_baseline_terms(x, terms) @ np.asarray(coef, dtype=float), floor_ms)


@dataclass
class KindModel:
    """The regressor of one head kind: a roofline baseline times a boosted-tree correction factor."""

    kind: str
    booster: object
    rel_rmse: float  # held-out relative RMSE of kernel latency
    samples: int
    baseline: list[float]
    terms: tuple[str, ...] = ROOFLINE_TERMS  # what ``baseline`` multiplies
    floor_ms: float = FLOOR_MS  # the shortest latency the profile resolves

    def predict(self, x: np.ndarray) -> np.ndarray:
        base = baseline_ms(x, self.baseline, self.terms, self.floor_ms)
        return base * np.exp(self.booster.predict(x, num_threads=1))  # type: ignore[attr-defined]

    def meta(self) -> dict:
        """models.json entry (terms and floor only where they differ from a CPU profile's)."""
        out = {"rel_rmse": self.rel_rmse, "samples": self.samples, "baseline": self.baseline}
        if tuple(self.terms) != ROOFLINE_TERMS:
            out["terms"] = list(self.terms)
        if self.floor_ms != FLOOR_MS:
            out["floor_ms"] = self.floor_ms
        return out

    def save(self, folder: Path) -> None:
        (folder / f"{self.kind}.lgb.txt").write_text(self.booster.model_to_string())  # type: ignore[attr-defined]

    @classmethod
    def load(cls, folder: Path, kind: str, meta: dict) -> "KindModel":
        path = folder / f"{kind}.lgb.txt"
        try:
            booster = _lgb().Booster(model_str=path.read_text())
        except Exception as exc:  # noqa: BLE001 - LightGBM raises its own error type
            raise ModelError(f"cannot read regressor {path}: {one_line(exc, 200)}; "
                             "re-run `edgetune profile` for this target to rebuild it") from None
        return cls(kind, booster, float(meta["rel_rmse"]), int(meta["samples"]), list(meta["baseline"]),
                   tuple(meta.get("terms", ROOFLINE_TERMS)), float(meta.get("floor_ms", FLOOR_MS)))


def _fit(x: np.ndarray, y_ms: np.ndarray, seed: int = 0, terms: Sequence[str] = ROOFLINE_TERMS,
         floor_ms: float = FLOOR_MS) -> tuple[object, list[float]]:
    coef = fit_baseline(x, y_ms, terms, floor_ms)
    return fit_booster(x, y_ms / baseline_ms(x, coef, terms, floor_ms), seed), coef


def held_out_errors(x: np.ndarray, y_ms: np.ndarray, folds: int = 5, seed: int = 0,
                    terms: Sequence[str] = ROOFLINE_TERMS, floor_ms: float = FLOOR_MS) -> np.ndarray:
    """Relative errors of out-of-fold predictions (k-fold cross-validation)."""
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    errors = np.empty(n)
    for fold in range(min(folds, n)):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        if len(train) < 3:
            errors[test] = np.nan
            continue
        booster, coef = _fit(x[train], y_ms[train], seed, terms, floor_ms)
        pred = baseline_ms(x[test], coef, terms, floor_ms) * np.exp(booster.predict(x[test], num_threads=1))  # type: ignore[attr-defined]
        errors[test] = pred / np.maximum(y_ms[test], floor_ms) - 1.0
    return errors


def fit_kind(kind: str, x: np.ndarray, y_ms: np.ndarray, cross_validate: bool = True,
             terms: Sequence[str] = ROOFLINE_TERMS, floor_ms: float = FLOOR_MS) -> tuple[KindModel, np.ndarray]:
    """Fit the saved model of one kind on all rows; returns it and its out-of-fold relative errors
    (NaN without ``cross_validate``). ``terms``: the baseline's columns; ``floor_ms``: the profile's resolution."""
    errors = held_out_errors(x, y_ms, terms=terms, floor_ms=floor_ms) if len(x) >= 10 and cross_validate \
        else np.full(len(x), np.nan)
    finite = errors[np.isfinite(errors)]
    rel_rmse = float(math.sqrt(np.mean(finite ** 2))) if len(finite) else 0.5
    booster, coef = _fit(x, y_ms, terms=terms, floor_ms=floor_ms)
    return KindModel(kind, booster, rel_rmse, len(x), coef, tuple(terms), floor_ms), errors


def ensemble_spread(x_train: np.ndarray, y_ms: np.ndarray, x_pool: np.ndarray, members: int = 5,
                    terms: Sequence[str] = ROOFLINE_TERMS, floor_ms: float = FLOOR_MS) -> np.ndarray:
    """Disagreement (std of log predictions) of a bagged ensemble on candidate rows: where to measure next."""
    return bagged_ensemble(x_train, y_ms, x_pool, members, terms, floor_ms)[0]


def bagged_ensemble(x_train: np.ndarray, y_ms: np.ndarray, x_pool: np.ndarray, members: int = 5,
                    terms: Sequence[str] = ROOFLINE_TERMS, floor_ms: float = FLOOR_MS) -> tuple[np.ndarray, np.ndarray]:
    """(disagreement on the candidate rows, out-of-bag |log error| per training row -- NaN for a row every
    member saw): where the ensemble is unsure, and where it is wrong on kernels it was not fitted on."""
    coef = fit_baseline(x_train, y_ms, terms, floor_ms)
    ratio = y_ms / baseline_ms(x_train, coef, terms, floor_ms)
    preds: list[Any] = []
    errors: list[list[float]] = [[] for _ in range(len(x_train))]
    for seed in range(members):
        booster = fit_booster(x_train, ratio, seed, subsample=0.8, rounds=150)
        preds.append(booster.predict(x_pool, num_threads=1))
        out = np.setdiff1d(np.arange(len(x_train)), bag_rows(len(x_train), seed, 0.8))
        if len(out):
            miss = np.abs(booster.predict(x_train[out], num_threads=1) - np.log(np.maximum(ratio[out], floor_ms)))
            for row, value in zip(out, miss):
                errors[row].append(float(value))
    oob = np.array([np.mean(e) if e else np.nan for e in errors])
    return np.std(np.stack(preds), axis=0), oob


def save_models(models: Sequence[KindModel], folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    meta = {}
    for model in models:
        model.save(folder)
        meta[model.kind] = model.meta()
    (folder / "models.json").write_text(json.dumps(meta, indent=2))
    return meta


def load_models(folder: Path) -> dict[str, KindModel]:
    meta_path = folder / "models.json"
    if not meta_path.exists():
        raise ModelError(f"no trained regressors in {folder}; run `edgetune profile` for this target")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path} is not valid JSON ({exc.msg}); re-run `edgetune profile` to rebuild it") from None
    return {kind: KindModel.load(folder, kind, m) for kind, m in meta.items()}


def fit_flops_baseline(macs: np.ndarray, y_ms: np.ndarray) -> dict:
    """Least-squares kernel latency = a + b * MACs: the FLOPs-proxy baseline the predictor is compared with."""
    design = np.stack([np.ones_like(macs, dtype=float), macs.astype(float)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y_ms, rcond=None)
    return {"intercept_ms": float(coef[0]), "ms_per_mac": float(coef[1])}
