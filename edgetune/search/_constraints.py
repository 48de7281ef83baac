"""A trial's constraints from the target: latency budget, activations in SRAM, weights in flash.

Optuna reads constraint values as "> 0 violates"; they are kept in the trial's user attributes too
(``_study._front`` and ``study_status`` read them back from there).
"""

from __future__ import annotations

from typing import Any, Optional

from edgetune._lazy import require
from edgetune.targets import Target

BYTES_PER_VALUE = {"fp32": 4, "fp16": 2, "int8": 1}
CONSTRAINT_NAMES = ("latency", "sram", "flash")


def stored_constraints(trial: Any) -> list[float]:
    """The constraint values recorded on ``trial`` (the ``constraints_func`` of Optuna < 5)."""
    return list(trial.user_attrs.get("constraints", [0.0]))


def native_constraints() -> bool:
    """Optuna >= 5 takes constraints from ``Trial.set_constraint`` (``constraints_func`` is deprecated)."""
    optuna = require("optuna", "all")
    return hasattr(optuna.trial.Trial, "set_constraint")


def set_constraints(trial: Any, violations: list[float], final: bool = False) -> None:
    """Record constraint values (read back by _front and study_status); ``final`` also hands them to the
    sampler, once per trial (Optuna keeps the first value set)."""
    trial.set_user_attr("constraints", violations)
    if final and native_constraints():
        for name, value in zip(CONSTRAINT_NAMES, violations):
            trial.set_constraint(name, value)


def memory_kb(graph: Any, precision: str = "int8") -> tuple[float, float]:
    """(peak activation KB: largest input+output of an op, weights KB) at ``precision`` -- what the device must hold."""
    peak = max(op.in_elems * max(1, len(op.inputs)) + op.out_elems for op in graph.ops)
    width = BYTES_PER_VALUE.get(precision, 4)
    return peak * width / 1024.0, graph.params * width / 1024.0


def violations_of(latency_ms: float, budget: Optional[float], act_kb: float, weight_kb: float,
                  target: Target) -> list[float]:
    """Optuna constraint values (> 0 violates): latency over budget, activations over SRAM, weights over flash."""
    return [latency_ms - budget if budget is not None else -1.0,
            act_kb - target.memory.sram_kb if target.memory.sram_kb else -1.0,
            weight_kb - target.memory.flash_kb if target.memory.flash_kb else -1.0]


def rejection_reasons(v: list[float], latency_ms: float, source: str, budget: Optional[float], act_kb: float,
                      weight_kb: float, target: Target) -> str:
    """Why a trial violates its constraints, in the numbers a user compares (empty when it does not)."""
    parts = [f"{source} {latency_ms:.3g} ms > {budget:g} ms" if v[0] > 0 else "",
             f"activations {act_kb:.0f} KB > SRAM {target.memory.sram_kb} KB" if v[1] > 0 else "",
             f"weights {weight_kb:.0f} KB > flash {target.memory.flash_kb} KB" if v[2] > 0 else ""]
    return "; ".join(p for p in parts if p)
