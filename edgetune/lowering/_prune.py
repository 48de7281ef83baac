"""Structured channel pruning with torch-pruning, then distillation from the unpruned model."""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetune._lazy import require
from edgetune.errors import ConfigError, RunnerError, one_line
from edgetune.lowering._base import Artifact, Lowering, LoweringContext, LoweringOptions, NamedOptions, PlanRequest
from edgetune.lowering._distill import accuracy, check_data_matches, check_distill_options, distill
from edgetune.lowering._torch_form import VIA_ONNX2TORCH, with_torch_form
from edgetune.models import LoadedModel
from edgetune.targets import Target

NOT_PRUNABLE = (
    "pruning needs the model as a torch.nn.Module built from layers (an in-memory module or a "
    "pkg.module:factory); {what} cannot be pruned"
)


@dataclass(frozen=True)
class PruneOptions(LoweringOptions):
    """The share of channels removed, and how the pruned network is distilled from the unpruned one."""

    prune_ratio: float = 0.5
    train_epochs: int = 3
    distill_alpha: float = 0.7
    distill_temperature: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "prune_ratio", _prune_ratio(self.prune_ratio))
        check_distill_options(self.train_epochs, self.distill_alpha, self.distill_temperature)


class PruneLowering(Lowering[PruneOptions]):
    """nn.Module -> channels removed by L2 magnitude (DepGraph keeps coupled layers consistent) -> .pt2.

    Runs on the source model before other chains: ``--prune R`` adds a pruned copy of every candidate.
    """

    name = "prune"
    input_format = "torch"
    also_accepts = VIA_ONNX2TORCH  # converted to an nn.Module by onnx2torch
    output_format = "torch"
    modules = ("torch", "torch_pruning")
    extra = "torch"
    preserves_outputs = False

    @classmethod
    def prefixes(cls, request: PlanRequest) -> list[NamedOptions]:
        """One pruned candidate per ratio asked for (``-pruned50`` for 0.5)."""
        return [(f"pruned{round(ratio * 100)}", {"prune_ratio": ratio}) for ratio in request.prune_ratios]

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        torch = require("torch", "torch")
        start = time.perf_counter()
        options = self.read_options(context)  # bad ratios or distillation settings are ConfigErrors
        ratio, epochs = options.prune_ratio, options.train_epochs
        alpha, temperature = options.distill_alpha, options.distill_temperature
        if len(model.inputs) != 1:
            raise RunnerError(f"pruning takes single-input models; '{model.name}' has {len(model.inputs)} inputs")
        shape = model.inputs[0].shape
        train = context.train if epochs > 0 else None
        # check data before the minutes of work below, not after
        if train is not None:
            check_data_matches(train, shape, "training")
        labelled_eval = context.eval if context.eval is not None and context.eval.y is not None else None
        if labelled_eval is not None:
            check_data_matches(labelled_eval, shape, "evaluation")

        teacher = _prunable_copy(model)
        student = _prunable_copy(model)
        example = torch.zeros(shape)
        macs_before, params_before = _count(teacher, example)
        ignored = _prune(student, example, ratio, model.name)
        macs_after, params_after = _count(student, example)
        details: dict[str, Any] = {
            "prune_ratio": ratio, "params_before": params_before, "params_after": params_after,
            "macs_before": macs_before, "macs_after": macs_after, "kept_layers": ignored,
        }
        if labelled_eval is not None:
            details["val_accuracy_unpruned"] = accuracy(teacher, labelled_eval)
            details["val_accuracy_pruned"] = accuracy(student, labelled_eval)
        if train is None:
            details["fine_tuned"] = False
            details["note"] = "pruned without fine-tuning (no training data or train_epochs=0); accuracy may drop"
        else:
            context.progress(f"prune: distilling {model.name} for {epochs} epoch(s) on {train.name}")
            details["fine_tuned"] = True
            details["fine_tune"] = distill(student, teacher, train, epochs, alpha, temperature,
                                           seed=int(options.seed), progress=context.progress)
            if labelled_eval is not None:
                details["val_accuracy_fine_tuned"] = accuracy(student, labelled_eval)

        out = workdir / f"{model.name}.pruned.pt2"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.save(torch.export.export(student.eval(), (example,)), str(out))
        return Artifact(out, "torch", time.perf_counter() - start, details=details, module=student)


def _prune_ratio(value: Any) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"prune_ratio must be a number in [0, 1), not {value!r}") from None
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"prune_ratio must lie in [0, 1) (the share of channels removed), not {ratio}")
    return ratio


def _prunable_copy(model: LoadedModel) -> Any:
    """An independent nn.Module in eval mode, or RunnerError saying why this model cannot be pruned."""
    torch = require("torch", "torch")
    module = with_torch_form(model).torch_module  # an ONNX model's nn.Module from onnx2torch has real layers
    if module is None:
        raise RunnerError(NOT_PRUNABLE.format(what=f"'{model.source}' (TFLite)"))
    layers = any(isinstance(m, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)) for m in module.modules())
    if not isinstance(module, torch.nn.Module) or (isinstance(module, torch.fx.GraphModule) and not layers):
        # ExportedProgram.module() calls aten ops on flat parameters: no Conv/Linear layers to prune
        raise RunnerError(NOT_PRUNABLE.format(what=f"'{model.source}' (an ExportedProgram or traced graph)"))
    if not layers:
        raise RunnerError(NOT_PRUNABLE.format(what=f"'{model.source}' (no Conv or Linear layers)"))
    try:
        return copy.deepcopy(module).eval()
    except Exception as exc:
        raise RunnerError(f"cannot copy '{model.source}' for pruning: {one_line(exc, typed=True)}") from None


def _output_layers(module: Any, example: Any) -> list[Any]:
    """The last Conv/Linear the forward pass runs: its output channels are the model's outputs."""
    torch = require("torch", "torch")
    order: list[Any] = []
    hooks = [
        m.register_forward_hook(lambda layer, _inputs, _output: order.append(layer))
        for m in module.modules()
        if isinstance(m, (torch.nn.modules.conv._ConvNd, torch.nn.Linear))
    ]
    try:
        with torch.no_grad():
            module(example)
    finally:
        for hook in hooks:
            hook.remove()
    return order[-1:]


def _prune(module: Any, example: Any, ratio: float, name: str) -> list[str]:
    """Remove ``ratio`` of the channels of every prunable group in place; returns the layers left whole."""
    torch = require("torch", "torch")
    tp = require("torch_pruning", "torch")
    with torch.no_grad():
        expected = tuple(module(example).shape)
    ignored = _output_layers(module, example)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = tp.pruner.MetaPruner(
                module, example, importance=tp.importance.MagnitudeImportance(p=2),
                pruning_ratio=ratio, ignored_layers=ignored,
            )
            pruner.step()
            with torch.no_grad():
                produced = tuple(module(example).shape)
    except Exception as exc:
        raise RunnerError(f"torch-pruning failed on '{name}': {one_line(exc, typed=True)}") from None
    if produced != expected:
        raise RunnerError(f"pruning changed the output of '{name}' from {expected} to {produced}; the model is not prunable")
    names = {id(m): n for n, m in module.named_modules()}
    return [names.get(id(m), type(m).__name__) for m in ignored]


def _count(module: Any, example: Any) -> tuple[int, int]:
    """(multiply-accumulates, parameters) of one forward pass on ``example``."""
    tp = require("torch_pruning", "torch")
    macs, params = tp.utils.count_ops_and_params(module, example)
    return int(macs), int(params)
