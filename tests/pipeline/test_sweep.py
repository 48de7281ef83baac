"""Shape sweeps and --batch-size: one point per shape, one run id, throughput from the batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.bench import BenchConfig, ResultsStore
from edgetune.errors import ConfigError, InputShapeError
from edgetune.pipeline._sweep import benchmark_sweep, parse_shape_sweep, sweep_points, with_batch

FAST = BenchConfig(budget_s=0.2, min_repeats=5, warmup_runs=1, warmup_s=0.0)


def test_unnamed_shapes_are_a_sweep_and_named_ones_one_point() -> None:
    assert parse_shape_sweep([]) == [None]
    assert parse_shape_sweep(["1x3x8x8", "2x3x8x8"]) == [(1, 3, 8, 8), (2, 3, 8, 8)]
    assert parse_shape_sweep(["a:1x4", "b:1x5"]) == [{"a": (1, 4), "b": (1, 5)}]
    assert parse_shape_sweep(["a:1x4;b:1x5", "a:2x4;b:2x5"]) == [{"a": (1, 4), "b": (1, 5)}, {"a": (2, 4), "b": (2, 5)}]
    assert parse_shape_sweep(["x:1x4", "x:2x4"]) == [{"x": (1, 4)}, {"x": (2, 4)}]  # one input, named


@pytest.mark.parametrize("values, message", [(["a:1x4;2x4"], "mixes named and unnamed"), ([";"], "empty"),
                                             (["1xfoo"], "bad input shape")])
def test_bad_sweeps_are_one_line_errors(values: list[str], message: str) -> None:
    with pytest.raises(InputShapeError, match=message):
        parse_shape_sweep(values)


def test_batch_size_replaces_the_leading_dimension(dynamic_onnx: Path, tiny_onnx: Path) -> None:
    assert with_batch((1, 3, 8, 8), 4, None) == (4, 3, 8, 8)
    assert with_batch(None, 4, str(dynamic_onnx)) == {"input": (4, 1, 8, 8)}
    points = sweep_points(["1x1x8x8", "1x1x16x16"], 2, str(dynamic_onnx))
    assert [(p.label, p.batch) for p in points] == [("2x1x8x8", 2), ("2x1x16x16", 2)]
    with pytest.raises(ConfigError, match="--batch-size must be between"):
        with_batch((1, 3), 0, None)
    with pytest.raises(InputShapeError, match="needs --input-shape"):
        with_batch(None, 2, "pkg.module:factory")
    with pytest.raises(ConfigError, match="same shape twice"):
        sweep_points(["1x4", "1x4"], None, None)


def test_a_sweep_measures_each_shape_under_one_run(dynamic_onnx: Path, isolated_results: Path) -> None:
    points = sweep_points(["1x1x8x8", "3x1x8x8"], None, str(dynamic_onnx))
    sweep = benchmark_sweep(str(dynamic_onnx), points, runtimes=["onnxruntime"], config=FAST)
    assert [s.point.batch for s in sweep] == [1, 3]
    assert [s.evaluation.model.inputs[0].shape for s in sweep] == [(1, 1, 8, 8), (3, 1, 8, 8)]
    assert len({s.evaluation.run_id for s in sweep}) == 1
    assert all(r.status == "ok" for s in sweep for r in s.evaluation.results)
    assert any("batch 3" in w for w in sweep[1].evaluation.warnings)  # judged against the reference only
    with ResultsStore(str(isolated_results)) as store:
        entries = {row["entry"] for row in store.rows(sweep[0].evaluation.run_id)}
    assert entries == {"shape 1x1x8x8", "shape 3x1x8x8"}


def test_a_fixed_batch_model_refuses_another_batch(tiny_onnx: Path) -> None:
    points = sweep_points([], 4, str(tiny_onnx))
    with pytest.raises(InputShapeError, match="fixed at 1x1x8x8"):
        benchmark_sweep(str(tiny_onnx), points, runtimes=["onnxruntime"], config=FAST)
