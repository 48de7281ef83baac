"""Convert a PyTorch model to a float32 .tflite with litert-torch (or pass a .tflite through)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from edgetune._quiet import quiet_fds
from edgetune.errors import ModelError, RunnerError
from edgetune.lowering._base import Artifact, Lowering, LoweringContext
from edgetune.models import LoadedModel
from edgetune.targets import Target


class TfliteLowering(Lowering):
    """torch.nn.Module -> litert_torch.convert -> fp32 .tflite."""

    name = "tflite"
    input_format = "torch"
    output_format = "tflite"
    modules = ("litert_torch", "ai_edge_litert")
    extra = "litert"

    def accepts(self, model: LoadedModel) -> bool:
        return model.torch_module is not None or model.tflite_path is not None

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        start = time.perf_counter()
        out = workdir / f"{model.name}.tflite"
        if model.tflite_path is not None:
            shutil.copyfile(model.tflite_path, out)
            return Artifact(out, "tflite", time.perf_counter() - start)
        if model.torch_module is None:
            raise ModelError(f"model '{model.name}' has no PyTorch form to convert to TFLite")
        import torch

        example = tuple(torch.zeros(spec.shape) for spec in model.inputs)
        try:
            with quiet_fds():
                import litert_torch

                litert_torch.convert(model.torch_module, example).export(str(out))
        except Exception as exc:
            raise RunnerError(f"litert-torch conversion failed: {str(exc).splitlines()[0][:300]}") from None
        return Artifact(out, "tflite", time.perf_counter() - start)
