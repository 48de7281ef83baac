"""A profile's own correction, fitted on its reference networks timed alone through the node profiler."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgetune.predict import GraphMeasurer, KernelPredictor, ProfileError, profile
from edgetune.predict._measure import KERNEL_CONFIG
from edgetune.predict._own import own_path
from edgetune.predict._profile import retrain
from edgetune.predict._references import fastest_nodes
from edgetune.targets import load_target
from tests.predict._fake import FakeNodeRunner, rounds_clock


@pytest.fixture(scope="module")
def node_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = load_target("host-cpu")
    with rounds_clock(1), GraphMeasurer(target, "fake-nodes", 1, config=KERNEL_CONFIG, runner=FakeNodeRunner()) as measurer:
        return profile(target, "fake-nodes", 0.2, tmp_path_factory.mktemp("own"), measurer=measurer).folder


def test_profile_fits_its_own_correction_on_its_references(node_profile: Path) -> None:
    references = json.loads((node_profile / "references.json").read_text())
    assert len(references["networks"]) == 20 and all(n["node_min_ms"] for n in references["networks"])
    assert all(len(n["passes_ms"]) >= 2 for n in references["networks"])
    own = json.loads(own_path(node_profile).read_text())
    assert own["correction"]["method"] == "kernel residual" and own["correction"]["kernels"] > 100
    assert own["correction"]["residual"]["kind"] == "lightgbm"
    predictor = KernelPredictor(node_profile)
    assert predictor.own is not None and predictor.machine is None
    estimate = predictor.predict_many([_a_reference(node_profile)])[0]
    assert estimate.extra["own_correction"] is True and "machine_correction" not in estimate.extra


def _a_reference(folder: Path):  # type: ignore[no-untyped-def]
    from edgetune.predict._references import read_references, reference_graphs

    return reference_graphs(read_references(folder / "references.json"))[-1]  # type: ignore[arg-type]


def test_retrain_refits_it_and_a_profile_without_node_times_has_none(node_profile: Path, tmp_path: Path) -> None:
    copy = tmp_path / "host-cpu" / "fake-nodes"
    shutil.copytree(node_profile, copy)
    own_path(copy).write_text("{}")  # a stale one is replaced
    retrain(copy)
    assert json.loads(own_path(copy).read_text())["kind"] == "own correction"
    references = json.loads((copy / "references.json").read_text())
    for network in references["networks"]:
        network.pop("node_min_ms")
    (copy / "references.json").write_text(json.dumps(references))
    retrain(copy)
    assert not own_path(copy).exists() and KernelPredictor(copy).own is None


def test_a_corrupt_own_correction_is_one_clear_error(node_profile: Path, tmp_path: Path) -> None:
    copy = tmp_path / "p"
    shutil.copytree(node_profile, copy)
    own_path(copy).write_text("{not json")
    with pytest.raises(ProfileError, match="own_correction.json is corrupt; delete it and run `edgetune profile --retrain`"):
        KernelPredictor(copy)


def test_fastest_nodes_takes_each_node_at_its_fastest_pass() -> None:
    passes = [[("a", "Conv", 1.0, 0.9), ("b", "Relu", 0.2, 0.1)], [("a", "Conv", 0.8, 0.7), ("b", "Relu", 0.3, 0.3)], []]
    assert fastest_nodes(passes) == [("a", "Conv", 0.7, 0.7), ("b", "Relu", 0.1, 0.1)]
