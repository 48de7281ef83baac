from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from edgetune.errors import ConfigError
from edgetune.models._load import export_module_to_onnx
from edgetune.predict import graph_from_onnx
from edgetune.search import SearchSpace, candidate_graph, candidate_module


@pytest.mark.parametrize("space", ["mobilenet", "plain"])
def test_graph_and_module_describe_the_same_network(space: str, tmp_path: Path) -> None:
    import torch

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(3):
        cand = SearchSpace(space).suggest(study.ask())
        graph = candidate_graph(cand, 1, 10)
        module = candidate_module(cand, 1, 10).eval()
        r = cand.arch["resolution"]
        path = tmp_path / f"{space}.onnx"
        torch.onnx.export(module, (torch.zeros(1, 1, r, r),), str(path), dynamo=False, input_names=["input"])
        exported, _skipped = graph_from_onnx(path)
        assert exported.macs == graph.macs
        assert module(torch.zeros(2, 1, 8, 8)).shape == (2, 10)  # digits-sized input is resized inside
        # fed digits-sized input, the graph starts with the resize the module does, and the export agrees
        fed = candidate_graph(cand, 1, 10, input_size=(8, 8))
        assert (fed.ops[0].kind == "resize") == (r != 8) and fed.macs == graph.macs
        export_module_to_onnx(module, (1, 1, 8, 8), path, "test")  # as the search exports a pruned network
        read, _skipped = graph_from_onnx(path)
        assert [op.kind for op in read.ops][:1] == [op.kind for op in fed.ops][:1] and read.macs == fed.macs


def test_yaml_space_narrows_choices(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("space: mobilenet\nkernel: [3]\nwidth: [0.5]\nhp:\n  optimizer: [adam]\n")
    space = SearchSpace.from_yaml(path)
    cand = space.suggest(optuna.create_study().ask())
    assert cand.arch["kernel0"] == 3 and cand.arch["width"] == 0.5 and cand.hp["optimizer"] == "adam"
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: mobilenet\nkernels: [3]\n")
    with pytest.raises(ConfigError, match="no choice 'kernels'"):
        SearchSpace.from_yaml(bad)
    with pytest.raises(ConfigError, match="unknown search space"):
        SearchSpace("transformer")


def test_python_space_and_smallest() -> None:
    space = SearchSpace("plain", {"channels": [4, 8], "blocks": [1, 2]})
    small = space.smallest()
    assert small.arch["channels"] == 4 and small.arch["blocks"] == 1
    assert candidate_graph(small, 1, 10).macs < candidate_graph(space.suggest(optuna.create_study().ask()), 1, 10).macs * 10


def test_pruning_estimate_shrinks_the_graph() -> None:
    space = SearchSpace("mobilenet", {"resolution": [8]})
    cand = space.suggest(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask())
    full, half = candidate_graph(cand, 1, 10), candidate_graph(cand, 1, 10, keep=0.5)
    assert half.macs < full.macs * 0.5 and half.params < full.params
    assert half.input_shape == full.input_shape  # the network's input is never pruned


def test_deploy_choices_from_yaml_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("space: plain\ndeploy:\n  precision: [int8]\n  prune_ratio: [0.0, 0.5]\n")
    cand = SearchSpace.from_yaml(path).suggest(optuna.create_study().ask())
    assert cand.deploy["precision"] == "int8" and cand.deploy["prune_ratio"] in (0.0, 0.5)
    with pytest.raises(ConfigError, match="unknown precision"):
        SearchSpace("plain", {}, {}, {"precision": ["int4"]})
    with pytest.raises(ConfigError, match="prune ratios"):
        SearchSpace("plain", {}, {}, {"prune_ratio": [1.5]})
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        SearchSpace("plain", {}, {"momentum": [0.9]})


def test_augmentation_policy_changes_inputs_and_is_seeded() -> None:
    import torch

    from edgetune.search._train import _augment

    x = torch.rand(6, 1, 8, 8)
    policy = {"aug_shift": 1, "aug_rotate": 20, "aug_scale": 0.2, "aug_erase": 1.0, "aug_noise": 0.0}
    a = _augment(torch, x, policy, torch.Generator().manual_seed(0))
    b = _augment(torch, x, policy, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.allclose(a, x)
    assert ((a == 0).flatten(1).sum(1) >= 4).all()  # every image lost at least its 2x2 erased square
    assert torch.equal(_augment(torch, x, {}, torch.Generator().manual_seed(0)), x)  # no policy, no change
