"""bench/compile --per-layer: every timed candidate's layers from its runtime's own profiler."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from edgetune.bench import BenchConfig
from edgetune.pipeline import benchmark, compile_model

FAST = BenchConfig(budget_s=0.2, min_repeats=5, warmup_runs=1, warmup_s=0.0)
PROFILED = [runtime for runtime in ("onnxruntime", "tvm", "openvino") if importlib.util.find_spec(runtime)]


def test_every_profiled_runtime_gives_layers_that_add_up(tiny_onnx: Path) -> None:
    assert len(PROFILED) >= 2
    # TVM pins the calling thread while a session is open, and OpenVINO's CPU plugin keeps the affinity it
    # first saw: OpenVINO is measured apart from TVM so that later tests see it unpinned
    results = [r for group in (["onnxruntime", "openvino"], ["tvm"]) if set(group) & set(PROFILED)
               for r in benchmark(tiny_onnx, runtimes=[g for g in group if g in PROFILED], config=FAST, per_layer=True,
                                  threads=1).results]
    assert {r.plan.runtime for r in results} == set(PROFILED)
    for result in results:
        assert result.status == "ok", result.reason
        profile = result.layers
        assert profile is not None and profile.layers, result.name
        assert profile.layers_ms == pytest.approx(sum(layer.latency_ms for layer in profile.layers))
        assert profile.end_to_end_ms == result.timing.stats.median_ms  # type: ignore[union-attr]
        assert profile.coverage is not None and profile.coverage > 0
        assert all(layer.latency_ms >= layer.min_ms >= 0 for layer in profile.layers)
        assert result.to_dict()["per_layer"]["layers_ms"] == pytest.approx(profile.layers_ms)


def test_litert_says_it_has_no_per_layer_profiler(tiny_pt2: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("litert_torch")
    from tests.conftest import tiny_factory

    evaluation = benchmark(tiny_factory(), runtimes=["litert"], config=FAST, per_layer=True, threads=1,
                           input_shape=(1, 1, 8, 8))
    profile = evaluation.results[0].layers
    assert profile is not None and profile.layers == () and "no per-operator timings" in profile.note


def test_compile_profiles_the_winner_into_the_output_folder(tiny_onnx: Path, tmp_path: Path) -> None:
    result = compile_model(tiny_onnx, output_dir=tmp_path / "out", runtimes=["onnxruntime"], config=FAST,
                           per_layer=True, threads=1)
    assert result.winner is not None and result.winner.layers is not None
    folder = tmp_path / "out" / "per-layer"
    assert json.loads((folder / "layers.json").read_text())["per_layer"][0]["candidate"] == result.winner.name
    assert (folder / "layers.csv").is_file() and (folder / "layers.html").is_file()
    manifest = json.loads(result.manifest_path.read_text())
    # the winner's entry carries it (which candidate wins, fp32 or int8, is the machine's call)
    [winner] = [c for c in manifest["candidates"] if c["name"] == result.winner.name]
    assert winner["per_layer"]["layers"]
    assert "Per-layer profile" in (tmp_path / "out" / "report.html").read_text()
