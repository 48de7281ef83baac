"""Fixed-count timing (`bench --iterations N`, benchmark_app's ``-niter``): N samples, no CI stop, no budget."""

from __future__ import annotations

from dataclasses import replace

from edgetune.bench._harness import BenchConfig
from edgetune.errors import ConfigError

MAX_ITERATIONS = 1_000_000
NO_BUDGET_S = 1e9  # "no time budget": the count alone ends the timing


def fixed_count(iterations: int, base: BenchConfig = BenchConfig()) -> BenchConfig:
    """``base`` set to take exactly ``iterations`` samples per candidate.

    Sets ``iterations`` and also bounds the CI rule's repeats to it, with blocks that divide it, so that a
    harness reading only min/max repeats stops at the same count.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1 <= iterations <= MAX_ITERATIONS:
        raise ConfigError(f"--iterations must be an integer between 1 and {MAX_ITERATIONS}, got {iterations!r}")
    block = max(d for d in range(1, min(base.block, iterations) + 1) if iterations % d == 0)
    return replace(base, iterations=iterations, min_repeats=iterations, max_repeats=iterations, block=block,
                   budget_s=NO_BUDGET_S)
