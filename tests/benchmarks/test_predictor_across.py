"""The predictor benchmark's repeatability across hours (benchmarks/predictor/across.py) and its machine label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.predictor.across import across_truths, machine_table, stored_truths, within


def test_a_uniformly_slower_hour_misses_raw_and_matches_in_shape() -> None:
    truth = {"a": (1.0, 0.01), "b": (2.0, 0.02), "c": (4.0, 0.0)}
    slower = {name: ms * 1.3 for name, (ms, _) in truth.items()}
    assert within(slower, truth) == {"networks": 3, "raw": 0.0, "shape": 1.0}


def test_only_the_networks_that_reproduce_are_scored() -> None:
    truth = {"a": (1.0, 0.01), "b": (2.0, 0.20)}  # b's passes disagree by 20%
    assert within({"a": 1.0, "b": 9.0}, truth) == {"networks": 1, "raw": 1.0, "shape": 1.0}
    assert within({"b": 2.0}, truth) == {"networks": 0}


def test_other_truths_give_mean_worst_and_best() -> None:
    truth = {"a": (1.0, 0.0), "b": (1.0, 0.0), "c": (1.0, 0.0), "d": (1.0, 0.0)}
    same = {"networks": {n: (1.0, 0.0) for n in truth}}
    one_off = {"networks": {"a": (1.0, 0.0), "b": (1.0, 0.0), "c": (1.0, 0.0), "d": (1.5, 0.0)}}
    found = across_truths(truth, [same, one_off])
    assert found["truths"] == 2
    assert found["raw"] == {"mean": 0.875, "min": 0.75, "max": 1.0}
    assert across_truths(truth, [])["truths"] == 0


def _write(folder: Path, stamp: str, machine: str, networks: dict[str, tuple[float, float]], **extra: object) -> None:
    detail = [{"name": n, "measured_ms": ms, "pass_gap": gap} for n, (ms, gap) in networks.items()]
    data = {"time": stamp, "machine": machine, "ground_truth": "measured", "networks_detail": detail, **extra}
    (folder / f"predictor_onnxruntime_{stamp}.json").write_text(json.dumps(data))


def test_stored_truths_are_compared_on_their_own_machine_only(tmp_path: Path) -> None:
    nets = {"a": (1.0, 0.0), "b": (2.0, 0.0)}
    _write(tmp_path, "20261201T000000Z", "amd", nets)
    _write(tmp_path, "20261201T010000Z", "amd", {"a": (1.02, 0.0), "b": (2.5, 0.0)})
    _write(tmp_path, "20261201T020000Z", "intel", {n: (ms * 3, g) for n, (ms, g) in nets.items()})
    _write(tmp_path, "20261201T030000Z", "amd", nets, rescored_from="predictor_onnxruntime_20261201T000000Z.json")
    _write(tmp_path, "20261201T040000Z", "amd", nets, ground_truth="simulated")
    truths = stored_truths(tmp_path)
    assert [t["time"] for t in truths] == ["20261201T000000Z", "20261201T010000Z", "20261201T020000Z"]
    rows = {r["time"]: r for r in machine_table(truths)}
    assert rows["20261201T000000Z"]["truths"] == 1  # the Intel truth, three times slower, is not compared
    assert rows["20261201T000000Z"]["raw"]["mean"] == 0.5
    assert rows["20261201T020000Z"]["truths"] == 0


def test_a_rescored_truth_keeps_the_machine_it_was_measured_on(tmp_path: Path) -> None:
    run = pytest.importorskip("benchmarks.predictor.run")
    from edgetune.predict import GraphBuilder

    b = GraphBuilder("net0", (1, 3, 8, 8))
    graph = b.build(b.relu(b.conv("input", 4, 3, 1)))
    _write(tmp_path, "20261201T000000Z", "AMD EPYC", {"net0": (0.5, 0.01)}, machine_isa=["avx512f"])
    truth, gap, seconds, machine = run.stored_truth(tmp_path / "predictor_onnxruntime_20261201T000000Z.json", [graph])
    assert (truth.tolist(), gap.tolist(), seconds) == ([0.5], [0.01], 0.0)
    assert machine == {"cpu_model": "AMD EPYC", "isa": ["avx512f"]}
