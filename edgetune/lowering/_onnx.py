"""The ONNX exchange file itself, as an artifact for ONNX Runtime."""

from __future__ import annotations

import time
from pathlib import Path

from edgetune.errors import ModelError
from edgetune.lowering._base import Artifact, Lowering, LoweringContext, Variant
from edgetune.models import LoadedModel
from edgetune.targets import Target


class OnnxLowering(Lowering):
    """Copies the model's ONNX form (static shapes) into the work folder."""

    name = "onnx"
    input_format = "onnx"
    output_format = "onnx"
    variants = (Variant("onnxruntime", "fp32"),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        if model.onnx_path is None:
            raise ModelError(f"model '{model.name}' has no ONNX form")
        start = time.perf_counter()
        out = workdir / f"{model.name}.onnx"
        if out.resolve() != model.onnx_path.resolve():
            import onnx

            # load+save embeds weights an exporter may have put in a side file
            onnx.save(onnx.load(str(model.onnx_path)), str(out))
        return Artifact(out, "onnx", time.perf_counter() - start)
