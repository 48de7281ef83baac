"""Fixed-count mode (`bench --iterations N`): exactly N samples, whatever the CI says."""

from __future__ import annotations

import pytest

from edgetune.bench import BenchConfig, measure
from edgetune.bench._fixed_count import fixed_count
from edgetune.errors import ConfigError
from edgetune.runners import Session


class _Instant(Session):
    def set_inputs(self, feeds) -> None:  # type: ignore[no-untyped-def]
        pass

    def invoke(self) -> None:
        pass

    def outputs(self) -> list:  # type: ignore[type-arg]
        return []


@pytest.mark.parametrize("count", [1, 7, 25, 30])
def test_a_fixed_count_takes_exactly_that_many_samples(count: int) -> None:
    config = fixed_count(count, BenchConfig(warmup_runs=1, warmup_s=0.0))
    assert config.iterations == count and count % config.block == 0
    assert measure(_Instant(), {}, config).stats.n == count


@pytest.mark.parametrize("bad", [0, -3, 10**7, 2.5, True])
def test_a_bad_count_is_a_one_line_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="--iterations"):
        fixed_count(bad)  # type: ignore[arg-type]


def test_bench_config_refuses_a_non_positive_count() -> None:
    with pytest.raises(ConfigError, match="--iterations must be at least 1"):
        BenchConfig(iterations=0)
