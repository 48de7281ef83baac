"""When quantization-aware training runs: only where post-training int8 missed the accuracy budget.

QAT costs minutes of fine-tuning per candidate; post-training int8 costs seconds. With
``--qat auto`` (the default) each QAT candidate waits until its post-training counterpart (the
LiteRT PT2E int8 build at the same pruning level) has been judged, and is built only when that
one was rejected or failed. ``--qat always`` builds it with the others; ``--qat never`` drops it.
"""

from __future__ import annotations

from typing import Optional, Sequence

from edgetune.lowering import lowering_registry
from edgetune.pipeline._candidates import CandidatePlan, CandidateResult


def _improves_on(lowering: str) -> Optional[str]:
    """The post-training lowering that ``lowering`` (quantization-aware training) replaces, else None."""
    cls = lowering_registry.get(lowering)
    return cls.improves_on if cls is not None else None


def is_qat(plan: CandidatePlan) -> bool:
    """Whether ``plan`` fine-tunes with quantization-aware training."""
    return any(_improves_on(name) for name in plan.lowerings)


def split_qat(plans: Sequence[CandidatePlan], mode: str) -> tuple[list[CandidatePlan], list[CandidatePlan]]:
    """(plans built in the first round, QAT plans deferred until their post-training counterpart is judged)."""
    if mode != "auto":
        return list(plans), []
    return [p for p in plans if not is_qat(p)], [p for p in plans if is_qat(p)]


def counterpart(plan: CandidatePlan, results: Sequence[CandidateResult]) -> Optional[CandidateResult]:
    """The post-training int8 candidate that ``plan`` (a QAT plan) would replace: same runtime and pruning."""
    lowerings = tuple(_improves_on(name) or name for name in plan.lowerings)
    ratio = plan.option_dict().get("prune_ratio")
    for result in results:
        if (result.plan.runtime == plan.runtime and result.plan.lowerings == lowerings
                and result.plan.option_dict().get("prune_ratio") == ratio):
            return result
    return None


def qat_skip_reason(plan: CandidatePlan, results: Sequence[CandidateResult]) -> str:
    """Why ``plan`` need not be built (its post-training counterpart met the budget), or "" to build it."""
    ptq = counterpart(plan, results)
    if ptq is None or ptq.status != "ok":
        return ""
    drop = f"drop {ptq.accuracy['drop_points']:.2f} pts, budget {ptq.accuracy['max_drop_points']:g}" if ptq.accuracy else "not judged"
    return f"post-training int8 met the accuracy budget ({ptq.name}: {drop}); --qat always builds it anyway"


def qat_trigger(plan: CandidatePlan, results: Sequence[CandidateResult]) -> str:
    """Why a deferred QAT plan was built: what happened to its post-training counterpart."""
    ptq = counterpart(plan, results)
    if ptq is None:
        return "no post-training int8 counterpart was evaluated"
    return f"{ptq.name} {ptq.status}: {ptq.reason}"
