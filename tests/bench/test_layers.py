"""Per-layer profiles: sums, shares, top-N, and what goes to JSON, CSV and the chart."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from edgetune.bench._layers import layer_profile
from edgetune.report._layers import layers_svg, write_layers_report
from edgetune.runners import NodeTime

NODES = [NodeTime("conv1", "Conv", 0.30, 0.25), NodeTime("relu", "Relu", 0.05, 0.04), NodeTime("fc", "Gemm", 0.15, 0.1)]


def test_layers_add_up_and_report_their_share_of_the_end_to_end_time() -> None:
    profile = layer_profile("ort-fp32", "onnxruntime", NODES, end_to_end_ms=0.625, runs=40)
    assert profile.layers_ms == pytest.approx(0.5)
    assert profile.coverage == pytest.approx(0.8)
    assert [layer.name for layer in profile.top(2)] == ["conv1", "fc"]
    assert sum(profile.share(layer) for layer in profile.layers) == pytest.approx(1.0)
    assert "80% of the end-to-end median 0.6250 ms" in profile.coverage_line()
    assert not profile.simulated and "ONNX Runtime profiler" in profile.source


def test_a_runtime_without_a_profiler_says_why() -> None:
    profile = layer_profile("litert-fp32", "litert", None, 1.0, note="no per-operator timings")
    assert profile.layers == () and profile.coverage is None
    assert "no per-operator timings" in profile.coverage_line()


def test_simulated_figures_are_labelled() -> None:
    profile = layer_profile("vela-int8", "vela", NODES, 0.5)
    assert profile.simulated and profile.runs == 0
    assert "SIMULATED" in profile.coverage_line() and "SIMULATED" in layers_svg(profile.to_dict())


def test_report_files_hold_every_layer(tmp_path: Path) -> None:
    profiles = [layer_profile("ort-fp32", "onnxruntime", NODES, 0.625), layer_profile("lite", "litert", None, 1.0)]
    files = write_layers_report(profiles, tmp_path / "out", top=2)
    data = json.loads(files.json.read_text())["per_layer"]
    assert [len(p["layers"]) for p in data] == [3, 0] and data[0]["coverage"] == pytest.approx(0.8)
    rows = list(csv.DictReader(files.csv.open()))
    assert [r["layer"] for r in rows] == ["conv1", "fc", "relu"] and rows[0]["rank"] == "1"
    assert sum(float(r["latency_ms"]) for r in rows) == pytest.approx(0.5)
    assert [c.name for c in files.charts] == ["ort-fp32.layers.svg"]
    svg = files.charts[0].read_text()
    assert svg.count('id="layer-bar-') == 2  # top 2 (one bar group per layer in matplotlib's SVG)
    assert "no per-layer figures" in files.html.read_text()
