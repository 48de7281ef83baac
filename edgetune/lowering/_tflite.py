"""Convert a PyTorch model to a float32 .tflite with litert-torch (or pass a .tflite through)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetune._quiet import quiet_fds
from edgetune.errors import ConfigError, DatasetError, ModelError, RunnerError, one_line
from edgetune.lowering._base import (
    Artifact,
    CalibrationOptions,
    Lowering,
    LoweringContext,
    LoweringOptions,
    NamedOptions,
    PlanRequest,
    Variant,
)
from edgetune.lowering._torch_form import VIA_ONNX2TORCH, with_torch_form
from edgetune.models import LoadedModel
from edgetune.targets import Target


class TfliteLowering(Lowering):
    """torch.nn.Module -> litert_torch.convert -> fp32 .tflite."""

    name = "tflite"
    input_format = "torch"
    also_accepts = ("tflite", *VIA_ONNX2TORCH)  # a .tflite input passes through; ONNX is converted to PyTorch
    output_format = "tflite"
    modules = ("litert_torch", "ai_edge_litert")
    extra = "litert"
    variants = (Variant("litert", "fp32"),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        start = time.perf_counter()
        out = workdir / f"{model.name}.tflite"
        if model.tflite_path is not None:
            shutil.copyfile(model.tflite_path, out)
            return Artifact(out, "tflite", time.perf_counter() - start)
        model = with_torch_form(model)
        if model.torch_module is None:
            raise ModelError(f"model '{model.name}' has no PyTorch form to convert to TFLite")
        import torch

        example = tuple(torch.zeros(spec.shape) for spec in model.inputs)
        try:
            with quiet_fds():
                import litert_torch

                litert_torch.convert(model.torch_module, example).export(str(out))
        except Exception as exc:
            raise RunnerError(f"litert-torch conversion failed: {one_line(exc)}") from None
        return Artifact(out, "tflite", time.perf_counter() - start)


def _example(model: LoadedModel) -> tuple:
    import torch

    return tuple(torch.zeros(spec.shape) for spec in model.inputs)


class TfliteInt8Lowering(Lowering[CalibrationOptions]):
    """PyTorch PT2E static int8 (symmetric, per-channel weights) -> full-integer .tflite via litert-torch.

    Inputs and outputs stay float32 (quantize/dequantize at the edges), so it drops into the same
    harness and fidelity checks as every other candidate.
    """

    name = "tflite-int8"
    input_format = "torch"
    also_accepts = VIA_ONNX2TORCH
    output_format = "tflite"
    modules = ("litert_torch", "ai_edge_litert", "torchao")
    extra = "litert"
    variants = (Variant("litert", "int8"),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        model = with_torch_form(model)
        if model.torch_module is None:
            raise ModelError(f"model '{model.name}' has no PyTorch form to quantize with PT2E")
        calibration = context.checked_calibration(self.name, model)
        samples = calibration.x[: self.read_options(context).calib_samples]
        start = time.perf_counter()
        out = workdir / f"{model.name}.int8.tflite"
        try:
            with quiet_fds():
                import litert_torch
                import torch
                from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
                from litert_torch.quantize.quant_config import QuantConfig
                from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

                quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
                exported = torch.export.export(model.torch_module, _example(model)).module()
                prepared = prepare_pt2e(exported, quantizer)
                with torch.no_grad():
                    for row in range(len(samples)):
                        prepared(torch.from_numpy(np.ascontiguousarray(samples[row : row + 1], dtype=np.float32)))
                quantized = convert_pt2e(prepared, fold_quantize=False)
                litert_torch.convert(quantized, _example(model), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(out))
        except Exception as exc:
            raise RunnerError(f"PT2E int8 -> TFLite conversion failed: {one_line(exc)}") from None
        return Artifact(out, "tflite", time.perf_counter() - start, {
            "quantization": "PT2E static int8, symmetric per-channel weights",
            **context.calibration_details(calibration, samples),
        })


class TfliteFp16Lowering(Lowering):
    """float16 weights in the .tflite (half the size); compute in fp16 where the CPU/delegate has it."""

    name = "tflite-fp16"
    input_format = "torch"
    also_accepts = VIA_ONNX2TORCH
    output_format = "tflite"
    modules = ("litert_torch", "ai_edge_litert")
    extra = "litert"
    variants = (Variant("litert", "fp16"),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        model = with_torch_form(model)
        if model.torch_module is None:
            raise ModelError(f"model '{model.name}' has no PyTorch form to convert to TFLite")
        start = time.perf_counter()
        out = workdir / f"{model.name}.fp16.tflite"
        try:
            with quiet_fds():
                import litert_torch
                from litert_torch.generative.quantize import quant_recipes

                config = quant_recipes.full_fp16_recipe()  # a QuantConfig with an fp16 weight recipe
                litert_torch.convert(model.torch_module, _example(model), quant_config=config).export(str(out))
        except Exception as exc:
            raise RunnerError(f"fp16 TFLite conversion failed: {one_line(exc)}") from None
        return Artifact(out, "tflite", time.perf_counter() - start, {"precision": "fp16 weights"})


def fold_batchnorm(module: Any) -> Any:
    """Fold every BatchNorm that directly follows a Conv inside an nn.Sequential into that Conv.

    litert-torch's QAT annotator for conv+bn patterns fails with torch 2.13 (it hands a function to
    torch.export), so quantization-aware training runs on the folded network, as deployment would.
    """
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, torch.nn.Sequential):
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = module._modules[first], module._modules[second]
            if isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d):
                module._modules[first] = fuse_conv_bn_eval(conv.eval(), norm.eval())
                module._modules[second] = torch.nn.Identity()
    return module


@dataclass(frozen=True)
class QatOptions(LoweringOptions):
    """Quantization-aware fine-tuning: epochs of distillation, and the seed they shuffle with."""

    train_epochs: int = 3
    seed: int = 0


class TfliteQatInt8Lowering(Lowering[QatOptions]):
    """Quantization-aware fine-tuning (PT2E QAT, distilled from the fp32 model) -> full-integer int8 .tflite.

    For when post-training int8 loses too much accuracy: fake-quantized training lets the weights
    adapt to int8 rounding. Needs labelled (or unlabelled: distillation only) training data.
    """

    name = "tflite-int8-qat"
    input_format = "torch"
    output_format = "tflite"
    modules = ("litert_torch", "ai_edge_litert", "torchao")
    extra = "litert"
    variants = (Variant("litert", "int8", "qat"),)  # only with --train; see pipeline/_qat.py for when
    improves_on = "tflite-int8"

    @classmethod
    def expand(cls, candidates: list[NamedOptions], request: PlanRequest) -> list[NamedOptions]:
        """Only with training data, and not with --qat never."""
        return candidates if request.train and request.qat != "never" else []

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        import copy

        import torch

        if model.torch_module is None or isinstance(model.torch_module, torch.fx.GraphModule):
            raise ConfigError(
                "quantization-aware training needs the model as a torch.nn.Module (pass package.module:factory), "
                "not an exported graph"
            )
        if context.train is None:
            raise ConfigError("quantization-aware training needs training data; pass --train (an .npz, image folder or digits)")
        from edgetune.lowering._distill import check_data_matches, distill, set_mode

        check_data_matches(context.train, model.inputs[0].shape, "training")
        options = self.read_options(context)
        epochs = int(options.train_epochs)
        start = time.perf_counter()
        out = workdir / f"{model.name}.int8-qat.tflite"
        teacher = model.torch_module
        try:
            from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
            from litert_torch.quantize.quant_config import QuantConfig
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

            student = fold_batchnorm(copy.deepcopy(teacher).eval())
            set_mode(student, True)
            example = _example(model)
            batch = torch.export.Dim("batch", min=1, max=4096)
            # traced with a batch of 2: an example batch of 1 would specialize the batch dimension
            two = tuple(torch.zeros((2, *spec.shape[1:])) for spec in model.inputs)
            exported = torch.export.export(student, two, dynamic_shapes=({0: batch},)).module()
            class _FoldedQatQuantizer(PT2EQuantizer):  # type: ignore[misc, valid-type]
                # BatchNorm is folded above, so the conv+bn QAT patterns (whose annotator breaks
                # under torch 2.13) have nothing to match; everything else is annotated as usual.
                STATIC_QAT_ONLY_OPS: list[str] = []

            quantizer = _FoldedQatQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=True))
            prepared = prepare_qat_pt2e(exported, quantizer)
            stats = distill(prepared, teacher, context.train, epochs, seed=int(options.seed),
                            progress=context.progress)
            quantized = convert_pt2e(prepared, fold_quantize=False)
            with quiet_fds():
                import litert_torch

                litert_torch.convert(quantized, example, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(out))
        except (ConfigError, DatasetError):
            raise
        except Exception as exc:
            raise RunnerError(f"PT2E quantization-aware training failed: {one_line(exc)}") from None
        return Artifact(out, "tflite", time.perf_counter() - start, {
            "quantization": "PT2E quantization-aware training, symmetric per-channel int8, distilled from fp32",
            "fine_tune": stats, "training_data": context.train.name,
        })
