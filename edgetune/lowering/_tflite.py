"""Convert a PyTorch model to a float32 .tflite with litert-torch (or pass a .tflite through)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

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


def _example(model: LoadedModel) -> tuple:
    import torch

    return tuple(torch.zeros(spec.shape) for spec in model.inputs)


class TfliteInt8Lowering(Lowering):
    """PyTorch PT2E static int8 (symmetric, per-channel weights) -> full-integer .tflite via litert-torch.

    Inputs and outputs stay float32 (quantize/dequantize at the edges), so it drops into the same
    harness and fidelity checks as every other candidate.
    """

    name = "tflite-int8"
    input_format = "torch"
    output_format = "tflite"
    modules = ("litert_torch", "ai_edge_litert", "torchao")
    extra = "litert"
    option_keys = ("calib_samples",)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        if model.torch_module is None:
            raise ModelError(f"model '{model.name}' has no PyTorch form to quantize with PT2E")
        calibration, samples = context.calibration_samples(self.name, model)
        start = time.perf_counter()
        out = workdir / f"{model.name}.int8.tflite"
        try:
            with quiet_fds():
                import torch
                from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
                from litert_torch.quantize.quant_config import QuantConfig
                from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

                import litert_torch

                quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
                exported = torch.export.export(model.torch_module, _example(model)).module()
                prepared = prepare_pt2e(exported, quantizer)
                with torch.no_grad():
                    for row in range(len(samples)):
                        prepared(torch.from_numpy(np.ascontiguousarray(samples[row : row + 1], dtype=np.float32)))
                quantized = convert_pt2e(prepared, fold_quantize=False)
                litert_torch.convert(quantized, _example(model), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(out))
        except Exception as exc:
            raise RunnerError(f"PT2E int8 -> TFLite conversion failed: {str(exc).splitlines()[0][:300]}") from None
        return Artifact(out, "tflite", time.perf_counter() - start, {
            "quantization": "PT2E static int8, symmetric per-channel weights",
            **context.calibration_details(calibration, samples),
        })


class TfliteFp16Lowering(Lowering):
    """float16 weights in the .tflite (half the size); compute in fp16 where the CPU/delegate has it."""

    name = "tflite-fp16"
    input_format = "torch"
    output_format = "tflite"
    modules = ("litert_torch", "ai_edge_litert")
    extra = "litert"

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        if model.torch_module is None:
            raise ModelError(f"model '{model.name}' has no PyTorch form to convert to TFLite")
        start = time.perf_counter()
        out = workdir / f"{model.name}.fp16.tflite"
        try:
            with quiet_fds():
                from litert_torch.generative.quantize import quant_recipes

                import litert_torch

                config = quant_recipes.full_fp16_recipe()  # a QuantConfig with an fp16 weight recipe
                litert_torch.convert(model.torch_module, _example(model), quant_config=config).export(str(out))
        except Exception as exc:
            raise RunnerError(f"fp16 TFLite conversion failed: {str(exc).splitlines()[0][:300]}") from None
        return Artifact(out, "tflite", time.perf_counter() - start, {"precision": "fp16 weights"})
