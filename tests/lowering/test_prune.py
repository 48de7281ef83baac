"""Channel pruning with torch-pruning and distillation from the unpruned model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.data import Dataset, load_dataset
from edgetune.errors import ConfigError, DatasetError, RunnerError
from edgetune.lowering import LoweringContext, get_lowering
from edgetune.models import LoadedModel, TensorSpec, load_model
from edgetune.targets import load_target

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")


def _loaded(module, shape: tuple[int, ...], classes: int) -> LoadedModel:
    """A LoadedModel holding ``module`` without the ONNX export load_model does (not needed here)."""
    return LoadedModel(name="net", source="<test>", source_format="torch", sha256="0" * 64,
                       inputs=(TensorSpec("input", shape),), outputs=(TensorSpec("output", (shape[0], classes)),),
                       torch_module=module.eval())


def _prune(model: LoadedModel, tmp_path: Path, **context):
    return get_lowering("prune").apply(model, load_target("host-cpu"), tmp_path, LoweringContext(**context))


def _small_cnn():
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3),
    )


def test_pruning_halves_channels_and_keeps_output_shape(tmp_path: Path) -> None:
    original = _small_cnn()
    before = {k: v.clone() for k, v in original.state_dict().items()}
    artifact = _prune(_loaded(original, (2, 1, 8, 8), 3), tmp_path, options={"prune_ratio": 0.5})
    pruned = artifact.module
    assert pruned[0].out_channels == 4 and pruned[3].out_channels == 8 and pruned[-1].out_features == 3
    assert artifact.details["params_after"] < artifact.details["params_before"]
    assert artifact.details["macs_after"] < artifact.details["macs_before"]
    assert artifact.details["fine_tuned"] is False and "accuracy may drop" in artifact.details["note"]
    x = torch.randn(2, 1, 8, 8)
    assert pruned(x).shape == (2, 3)
    # the saved program is the pruned module, and the input model is left as it was
    assert artifact.path.name == "net.pruned.pt2"
    torch.testing.assert_close(torch.export.load(str(artifact.path)).module()(x), pruned(x))
    assert all(torch.equal(before[k], v) for k, v in original.state_dict().items())


def test_mobilenet_depthwise_and_residual_structure_survives(tmp_path: Path) -> None:
    from edgetune.models.zoo import mobilenet_v2_like

    net = mobilenet_v2_like(width_mult=0.35, num_classes=10)
    artifact = _prune(_loaded(net, (1, 3, 32, 32), 10), tmp_path, options={"prune_ratio": 0.5})
    pruned = artifact.module
    assert pruned(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert artifact.details["params_after"] < 0.5 * artifact.details["params_before"]
    depthwise = [m for m in pruned.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    residual = [m for m in pruned.modules() if getattr(m, "residual", False)]
    assert residual
    for block in residual:
        convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs[0].in_channels == convs[-1].out_channels  # x + block(x) still adds like shapes
    widths = [m.out_channels for m in depthwise]
    original = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert all(w < o for w, o in zip(widths, original))


@pytest.fixture(scope="module")
def digits_teacher():
    from edgetune.models._train import train_classifier
    from edgetune.models.zoo import digits_cnn

    torch.manual_seed(0)
    module = digits_cnn()
    data = load_dataset("digits")
    accuracy = train_classifier(module, data, seconds=600, epochs=5)  # epochs end it, not the clock
    assert accuracy > 0.8
    return module, data.split(0.2, 0)


def test_distillation_recovers_accuracy_lost_to_pruning(digits_teacher, tmp_path: Path) -> None:
    module, (train, val) = digits_teacher
    model = _loaded(module, (1, 1, 8, 8), 10)
    bare = _prune(model, tmp_path, eval=val, options={"prune_ratio": 0.5})
    tuned = _prune(model, tmp_path, train=train, eval=val, options={"prune_ratio": 0.5, "train_epochs": 2, "seed": 0})
    assert bare.details["params_after"] == tuned.details["params_after"] < bare.details["params_before"]
    assert tuned.details["val_accuracy_unpruned"] == bare.details["val_accuracy_unpruned"]
    assert tuned.details["val_accuracy_pruned"] == bare.details["val_accuracy_pruned"]
    assert tuned.details["fine_tuned"] and tuned.details["fine_tune"]["epochs"] == 2
    assert tuned.details["val_accuracy_fine_tuned"] > bare.details["val_accuracy_pruned"] + 0.1


def test_distill_is_seeded_and_leaves_teacher_alone() -> None:
    from edgetune.lowering._distill import distill

    teacher = _small_cnn().eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    rng = np.random.default_rng(0)
    data = Dataset("rand", rng.standard_normal((64, 1, 8, 8)).astype(np.float32), None)
    runs = []
    for _ in range(2):
        student = _small_cnn()
        stats = distill(student, teacher, data, epochs=1, alpha=0.5, temperature=2.0, seed=3)
        runs.append(stats["final_train_loss"])
        assert stats["used_labels"] is False  # unlabelled data: the distillation term alone
    assert runs[0] == runs[1]
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_training_data_of_the_wrong_shape_is_a_dataset_error(tmp_path: Path) -> None:
    bad = Dataset("bad", np.zeros((10, 1, 4, 4), np.float32), np.zeros(10, np.int64))
    with pytest.raises(DatasetError, match=r"1x4x4.*1x1x8x8"):
        _prune(_loaded(_small_cnn(), (1, 1, 8, 8), 3), tmp_path, train=bad)


def test_labels_beyond_the_model_outputs_are_a_dataset_error(tmp_path: Path) -> None:
    data = Dataset("labels", np.zeros((10, 1, 8, 8), np.float32), np.full(10, 7, np.int64))
    with pytest.raises(DatasetError, match="3 outputs"):
        _prune(_loaded(_small_cnn(), (1, 1, 8, 8), 3), tmp_path, train=data, options={"train_epochs": 1})


@pytest.mark.parametrize("options", [{"prune_ratio": 1.0}, {"prune_ratio": "half"}, {"train_epochs": -1},
                                     {"distill_alpha": 2.0}, {"distill_temperature": 0}])
def test_bad_options_are_config_errors(options: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _prune(_loaded(_small_cnn(), (1, 1, 8, 8), 3), tmp_path, options=options)


def test_exported_program_input_is_not_prunable(tiny_pt2: Path, tmp_path: Path) -> None:
    model = load_model(tiny_pt2, workdir=tmp_path)
    assert get_lowering("prune").accepts(model)
    with pytest.raises(RunnerError, match="pruning needs the model as a torch.nn.Module"):
        _prune(model, tmp_path)


def test_model_without_layers_is_not_prunable(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match="no Conv or Linear layers"):
        _prune(_loaded(torch.nn.Flatten(), (1, 1, 8, 8), 64), tmp_path)
