"""The PyTorch form a torch-taking lowering works on: the model's own, or its ONNX form converted."""

from __future__ import annotations

from dataclasses import replace

from edgetune.models import LoadedModel

# what a torch-taking lowering also accepts (its ``also_accepts``): an ONNX model, converted by onnx2torch when applied
VIA_ONNX2TORCH = ("onnx",)


def with_torch_form(model: LoadedModel) -> LoadedModel:
    """``model`` with a ``torch_module``: its own, or one converted from its ONNX form by onnx2torch.

    A model with neither form is returned as it is (the lowering then says what it needs). A
    conversion that fails raises UnsupportedOperatorError naming the operators, or ModelError.
    """
    if model.torch_module is not None or model.onnx_path is None:
        return model
    from edgetune.models._onnx_torch import onnx_to_torch

    return replace(model, torch_module=onnx_to_torch(model.onnx_path, model.inputs, model.name))
