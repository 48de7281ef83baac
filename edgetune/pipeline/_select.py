"""Pick the winner: the best candidate by the objective among those within the accuracy budget."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from edgetune.pipeline._candidates import CandidateResult

_KEYS: dict[str, tuple[str, Callable[[CandidateResult], float]]] = {
    "latency": ("median latency", lambda r: r.timing.stats.median_ms if r.timing else float("inf")),
    "size": ("artifact size", lambda r: float(r.artifact.size_bytes) if r.artifact else float("inf")),
    "memory": ("peak RSS increase", lambda r: r.rss_delta_mb if r.rss_delta_mb is not None else float("inf")),
}


def _describe(objective: str, r: CandidateResult) -> str:
    if objective == "size":
        return f"{r.artifact.size_bytes / 1024:.1f} KB" if r.artifact else "?"
    if objective == "memory":
        return f"{r.rss_delta_mb:.1f} MB" if r.rss_delta_mb is not None else "?"
    return f"{r.timing.stats.median_ms:.4g} ms" if r.timing else "?"


def _accuracy_note(r: CandidateResult) -> str:
    acc = r.accuracy
    if not acc:
        return ""
    if acc["metric"] == "top1_accuracy":
        return f", top-1 {acc['value']:.1%} (fp32 {acc['reference_value']:.1%})"
    return f", {acc['value']:.1%} top-1 agreement with fp32"


def _risk(r: CandidateResult) -> tuple[int, float]:
    drop = r.accuracy["drop_points"] if r.accuracy else 0.0
    return (0 if r.plan.exact else 1, drop)


def _safest_within_noise(fastest: CandidateResult, eligible: list[CandidateResult]) -> CandidateResult:
    """Among candidates statistically tied with the fastest, prefer exact fp32, then the smallest accuracy drop.

    A reduced-precision or pruned model is only worth its accuracy risk for a speed-up we can
    actually measure.
    """
    stats = fastest.timing.stats  # type: ignore[union-attr]
    tied = [r for r in eligible if r.timing and r.timing.stats.ci_low_ms <= stats.ci_high_ms]
    return min(tied, key=lambda r: (_risk(r), r.timing.stats.median_ms))  # type: ignore[union-attr]


def select_winner(results: Sequence[CandidateResult], objective: str = "latency") -> tuple[Optional[CandidateResult], str]:
    """Return (winner or None, a sentence saying why). Ties on the objective go to the lower latency."""
    label, key = _KEYS[objective]
    latency = _KEYS["latency"][1]
    eligible = sorted((r for r in results if r.status == "ok" and r.timing is not None),
                      key=lambda r: (key(r), latency(r)))
    if not eligible:
        problems = "; ".join(f"{r.name}: {r.status} ({r.reason})" for r in results) or "no candidates"
        return None, f"no candidate both ran and stayed within the accuracy budget ({problems})"
    best = eligible[0]
    if objective == "latency":
        best = _safest_within_noise(best, eligible)
        eligible = [best] + [r for r in eligible if r is not best]
    if len(eligible) == 1:
        return best, f"only candidate that ran and stayed within the accuracy budget ({label} {_describe(objective, best)}{_accuracy_note(best)})"
    second = eligible[1]
    ratio = key(second) / key(best) if key(best) > 0 else float("inf")
    noise = ""
    if objective == "latency":
        a, b = best.timing.stats, second.timing.stats  # type: ignore[union-attr]
        if best is not min(eligible, key=latency):
            noise = ("; chosen over a nominally faster candidate whose lead is within measurement noise "
                     "because it carries less accuracy risk")
        elif a.ci_high_ms >= b.ci_low_ms:
            noise = "; their 95% intervals of the median overlap, so the lead is within measurement noise"
    return best, (
        f"best {label} of {len(eligible)} candidates within the accuracy budget: {_describe(objective, best)}"
        f"{_accuracy_note(best)} vs {second.name} {_describe(objective, second)} ({ratio:.2f}x){noise}"
    )
