"""Pick the winner: the fastest candidate whose outputs pass the fidelity check."""

from __future__ import annotations

from typing import Optional, Sequence

from edgetune.pipeline._candidates import CandidateResult


def select_winner(results: Sequence[CandidateResult]) -> tuple[Optional[CandidateResult], str]:
    """Return (winner or None, a sentence saying why)."""
    eligible = sorted(
        (r for r in results if r.status == "ok" and r.timing is not None),
        key=lambda r: r.timing.stats.median_ms,  # type: ignore[union-attr]
    )
    if not eligible:
        problems = "; ".join(f"{r.name}: {r.status} ({r.reason})" for r in results) or "no candidates"
        return None, f"no candidate both ran and matched the reference ({problems})"
    best = eligible[0]
    stats = best.timing.stats  # type: ignore[union-attr]
    if len(eligible) == 1:
        return best, f"only candidate that ran and matched the reference (median {stats.median_ms:.4g} ms)"
    second = eligible[1]
    other = second.timing.stats  # type: ignore[union-attr]
    ratio = other.median_ms / stats.median_ms
    noise = (
        "; their 95% intervals of the median overlap, so the lead is within measurement noise"
        if stats.ci_high_ms >= other.ci_low_ms
        else ""
    )
    return best, (
        f"fastest of {len(eligible)} candidates that matched the reference: median {stats.median_ms:.4g} ms "
        f"vs {second.name} {other.median_ms:.4g} ms ({ratio:.2f}x){noise}"
    )
