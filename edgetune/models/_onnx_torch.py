"""ONNX -> torch.nn.Module with onnx2torch, so that an ONNX model reaches every PyTorch lowering.

Chosen over onnx2tf (ONNX -> TFLite): onnx2tf pins old TensorFlow, numpy 1.x, onnx and
onnxruntime releases that conflict with this environment, while onnx2torch is pure Python and
feeds the PT2E / litert-torch path the PyTorch inputs already take (LiteRT fp32/fp16/int8, Vela,
TFLite Micro), and its result is an nn.Module made of Conv/Linear layers that torch-pruning can
restructure.

Two adapters, both kept here:

* onnx2torch imports torchvision at import time for NonMaxSuppression/RoiAlign, and torchvision
  has no CPU build matching torch 2.13 here. Where it is missing, a placeholder module is in
  ``sys.modules`` during the import only; converting a model with those operators is refused,
  naming them.
* onnx2torch 1.5 converts operator versions up to opset 17. Newer exporters (torch.onnx with
  dynamo writes opset 18+) bump many operators only to widen their types; those versions are
  mapped to the converter of the older version (``TYPES_ONLY``). Operators whose newer version
  changed behaviour are mapped only where the node keeps the older behaviour (``_GUARDED``), and
  the Reduce operators, whose axes moved from an attribute to an input in opset 18, get a
  converter reading constant axes.

The converted module is run once against ONNX Runtime before it is handed back: a conversion that
does not reproduce the ONNX model is an error, never a silently different candidate.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgetune._lazy import available, require
from edgetune.errors import MissingDependencyError, ModelError, UnsupportedOperatorError, one_line
from edgetune.models._spec import TensorSpec

ONNX2TORCH_VERSION = "1.5.15"  # the adapters below are written against this release
NEEDS_TORCHVISION = ("NonMaxSuppression", "RoiAlign")
ATOL = 1e-4  # fp32 vs ONNX Runtime on one random input, relative to the output's scale
REDUCE_OPS = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
              "ReduceProd", "ReduceSumSquare")
# operator -> its versions since opset 16 that only widened the types (bfloat16, float8, int4, strings);
# each is converted like the newest older version onnx2torch knows
TYPES_ONLY: dict[str, tuple[int, ...]] = {
    "GreaterOrEqual": (16,), "LessOrEqual": (16,), "Cast": (19, 21), "Constant": (19, 21), "Equal": (19,),
    "Identity": (19, 21), "Reshape": (19, 21), "Shape": (19, 21), "ConstantOfShape": (20, 21), "IsInf": (20,),
    "IsNaN": (20,), "Flatten": (21,), "Transpose": (21,), "Unsqueeze": (21,), "Squeeze": (21,),
    **{op: (22,) for op in ("Acos", "Asin", "Atan", "Cos", "Sin", "Tan", "Conv", "ConvTranspose", "MaxPool",
                            "GlobalAveragePool", "Dropout", "Elu", "HardSigmoid", "HardSwish",
                            "InstanceNormalization", "Round", "Selu", "Softplus", "Softsign", "EyeLike")},
}


def _attr(node: Any, name: str, default: Any) -> Any:
    return node.attributes.get(name, default)


def _pad_news(node: Any) -> str:
    if _attr(node, "mode", "constant") == "wrap":
        return "wrap mode"
    return "an axes input" if len(node.input_values) > 3 and node.input_values[3] else ""


def _resize_news(node: Any) -> str:
    news = [name for name, default in (("antialias", 0), ("axes", None), ("keep_aspect_ratio_policy", "stretch"))
            if _attr(node, name, default) != default]
    if _attr(node, "coordinate_transformation_mode", "") == "half_pixel_symmetric":
        news.append("half_pixel_symmetric")
    return ", ".join(news)


def _pool_news(node: Any) -> str:
    return "dilations" if any(d != 1 for d in _attr(node, "dilations", [1])) else ""


# operator -> (newer versions that changed behaviour, why a node needs the new behaviour, or "" when the
# converter of the newest older version reproduces it)
_GUARDED: dict[str, tuple[tuple[int, ...], Callable[[Any], str]]] = {
    "Pad": ((18, 19, 21), _pad_news),
    "Split": ((18,), lambda node: ""),  # num_outputs: the older converter splits by the number of outputs
    "ScatterND": ((18,), lambda node: "max/min reduction" if _attr(node, "reduction", "none") in ("max", "min") else ""),
    "AveragePool": ((19, 22), _pool_news),
    "Resize": ((18, 19), _resize_news),
}


def import_onnx2torch() -> types.ModuleType:
    """onnx2torch, imported with a placeholder torchvision where the real one is missing (see module doc)."""
    require("torch", "torch")
    try:
        importlib.import_module("torchvision")
        missing_torchvision = False
    except ImportError:
        missing_torchvision = True
    if missing_torchvision and "onnx2torch" not in sys.modules:
        placeholder, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

        def unavailable(*_args: Any, **_kwargs: Any) -> Any:
            raise UnsupportedOperatorError("this operator needs torchvision, which is not installed")

        ops.nms = ops.roi_align = ops.box_convert = unavailable  # type: ignore[attr-defined]
        placeholder.ops = ops  # type: ignore[attr-defined]
        sys.modules.update({"torchvision": placeholder, "torchvision.ops": ops})
        try:
            module = _import_converter()
        finally:  # nothing else may mistake the placeholder for torchvision
            sys.modules.pop("torchvision", None)
            sys.modules.pop("torchvision.ops", None)
    else:
        module = _import_converter()
    _register_adapters()
    return module


def _import_converter() -> types.ModuleType:
    try:
        return importlib.import_module("onnx2torch")
    except ImportError as exc:
        # not an extra: its torchvision requirement would replace the CPU build of torch with a CUDA one
        raise MissingDependencyError(
            f"onnx2torch is not installed ({exc.msg}); an ONNX model needs it for the PyTorch-based candidates "
            f"(LiteRT, Vela, TFLite Micro, pruning): pip install --no-deps onnx2torch=={ONNX2TORCH_VERSION}"
        ) from None


def _register_adapters() -> None:
    from onnx2torch.node_converters.registry import _CONVERTER_REGISTRY, OperationDescription, add_converter

    def register(op: str, version: int, converter: Callable[..., Any]) -> None:
        if OperationDescription("", op, version) not in _CONVERTER_REGISTRY:
            add_converter(operation_type=op, version=version)(converter)

    def older(op: str, version: int) -> Any:
        known = [d.version for d in _CONVERTER_REGISTRY if d.domain == "" and d.operation_type == op and d.version < version]
        return _CONVERTER_REGISTRY[OperationDescription("", op, max(known))] if known else None

    for op, versions in TYPES_ONLY.items():
        for version in versions:
            if older(op, version) is not None:
                register(op, version, older(op, version))
    for op, (versions, blocker) in _GUARDED.items():
        for version in versions:
            if older(op, version) is not None:
                register(op, version, _guarded(op, version, older(op, version), blocker))
    for op in REDUCE_OPS:
        register(op, 18, _reduce_with_axes_input)
        register(op, 20, _reduce_with_axes_input)


def _guarded(op: str, version: int, older: Callable[..., Any], blocker: Callable[[Any], str]) -> Callable[..., Any]:
    def convert(node: Any, graph: Any) -> Any:
        reason = blocker(node)
        if reason:
            raise NotImplementedError(f"{op}-{version} with {reason}")
        return older(node, graph)

    return convert


def _reduce_with_axes_input(node: Any, graph: Any) -> Any:
    """Reduce* since opset 18: the axes are the optional second input (converted when constant)."""
    from onnx2torch.node_converters.reduce import OnnxReduceStaticAxes
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult, get_const_value

    axes = None
    if len(node.input_values) > 1 and node.input_values[1]:
        try:
            axes = [int(a) for a in get_const_value(node.input_values[1], graph).tolist()]
        except KeyError:
            raise NotImplementedError(f"{node.operation_type} with axes computed at run time") from None
    if not axes and _attr(node, "noop_with_empty_axes", 0):
        raise NotImplementedError(f"{node.operation_type} with noop_with_empty_axes")
    module = OnnxReduceStaticAxes(operation_type=node.operation_type, axes=axes, keepdims=_attr(node, "keepdims", 1))
    return OperationConverterResult(torch_module=module,
                                    onnx_mapping=OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values))


def unsupported_operators(proto: Any) -> list[str]:
    """``Op-version`` of every operator in ``proto``'s main graph that onnx2torch (with the adapters) cannot convert."""
    from onnx import defs
    from onnx2torch.node_converters.registry import _CONVERTER_REGISTRY, OperationDescription

    opsets = {entry.domain or "": entry.version for entry in proto.opset_import}
    missing: list[str] = []
    for node in proto.graph.node:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx"):
            missing.append(f"{domain}.{node.op_type}")
            continue
        try:
            version = defs.get_schema(node.op_type, max_inclusive_version=opsets.get("", 1), domain="").since_version
        except Exception:
            missing.append(node.op_type)
            continue
        if node.op_type in NEEDS_TORCHVISION and not available("torchvision"):
            missing.append(f"{node.op_type} (needs torchvision)")
        elif OperationDescription("", node.op_type, version) not in _CONVERTER_REGISTRY:
            missing.append(f"{node.op_type}-{version}")
    return sorted(set(missing))


def _drop_idle_allowzero(proto: Any) -> Any:
    """Reshape's allowzero=1 (which onnx2torch refuses) changes nothing when the constant shape holds no 0:
    torch.onnx writes it on every Reshape."""
    from onnx import numpy_helper

    constants = {init.name: init for init in proto.graph.initializer}
    constants.update({node.output[0]: node.attribute[0].t for node in proto.graph.node
                      if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"})
    for node in proto.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        if 0 in numpy_helper.to_array(constants[node.input[1]]).tolist():
            continue
        for attribute in list(node.attribute):
            if attribute.name == "allowzero":
                node.attribute.remove(attribute)
    return proto


def onnx_to_torch(onnx_path: Path, inputs: Sequence[TensorSpec], name: str) -> Any:
    """The ONNX model at ``onnx_path`` as an nn.Module in eval mode, checked against ONNX Runtime.

    UnsupportedOperatorError names the operators onnx2torch cannot convert; ModelError when the
    conversion fails otherwise or its outputs differ from ONNX Runtime's.
    """
    import onnx

    onnx2torch = import_onnx2torch()
    proto = _drop_idle_allowzero(onnx.load(str(onnx_path)))
    missing = unsupported_operators(proto)
    if missing:
        raise UnsupportedOperatorError(
            f"ONNX -> PyTorch (onnx2torch) cannot convert operator(s) {', '.join(missing)} of '{name}'")
    try:
        module = onnx2torch.convert(proto).eval()
    except NotImplementedError as exc:
        raise UnsupportedOperatorError(f"ONNX -> PyTorch (onnx2torch) cannot convert '{name}': {exc}") from None
    except Exception as exc:
        raise ModelError(f"ONNX -> PyTorch (onnx2torch) failed on '{name}': "
                         f"{one_line(exc, 200, typed=True)}") from None
    _freeze_constant_inputs(module, inputs)
    _check_against_onnxruntime(module, onnx_path, inputs, name)
    return module


def _freeze_constant_inputs(module: Any, inputs: Sequence[TensorSpec]) -> None:
    """Replace onnx2torch's Reshape and Pad, which read their shape/pads tensor at run time (a data-dependent
    branch that torch.export refuses), by static modules where that tensor is a constant of the graph."""
    import operator

    import torch
    from onnx2torch.node_converters.pad import OnnxPadDynamic, OnnxPadStatic
    from onnx2torch.node_converters.reshape import OnnxReshape
    from torch.fx.passes.shape_prop import ShapeProp

    with torch.no_grad():  # the shape every node sees at the model's own input shape
        ShapeProp(module).propagate(*(torch.zeros(spec.shape) for spec in inputs))
    graph = module.graph
    for node in list(graph.nodes):
        if node.op != "call_module" or len(node.args) < 2:
            continue
        inner = module.get_submodule(node.target)
        if not isinstance(inner, (OnnxReshape, OnnxPadDynamic)):
            continue
        constants = [operator.attrgetter(a.target)(module).tolist() if getattr(a, "op", "") == "get_attr" else None
                     for a in node.args[1:]]
        if any(c is None for c in constants):
            continue
        if isinstance(inner, OnnxReshape):
            meta = node.args[0].meta.get("tensor_meta") if hasattr(node.args[0], "meta") else None
            replacement: Any = _StaticReshape(constants[0], tuple(meta.shape) if meta is not None else None)  # type: ignore[arg-type]
        else:  # OnnxPadDynamic
            value = float(constants[1]) if len(constants) > 1 and not isinstance(constants[1], list) else 0.0  # type: ignore[arg-type]
            replacement = OnnxPadStatic.create_from_onnx_params(constants[0], _onnx_pad_mode(inner.mode), value)
        module.add_submodule(node.target, replacement)
        node.args = node.args[:1]
    graph.eliminate_dead_code()
    module.recompile()


def _onnx_pad_mode(torch_mode: str) -> str:
    return {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}.get(torch_mode, torch_mode)


class _StaticReshape:  # an nn.Module, built lazily below so that torch is imported only when needed
    def __new__(cls, shape: list[int], input_shape: Optional[tuple[int, ...]]) -> Any:
        import torch

        class StaticReshape(torch.nn.Module):
            """ONNX Reshape with a constant shape (0 copies the input's dimension).

            A flatten that keeps the batch, (N, ...) -> (N, features), becomes (batch, -1): the same for
            the model as exported, and it still runs on training batches and after pruning removed
            channels before it (fine-tuning a pruned ONNX model needs both)."""

            def __init__(self, shape: list[int]) -> None:
                super().__init__()
                self.shape = [int(d) for d in shape]
                self.flatten = (len(self.shape) == 2 and input_shape is not None and len(input_shape) >= 2
                                and self.shape[0] in (0, input_shape[0]))

            def forward(self, x: Any) -> Any:
                if self.flatten:
                    return torch.reshape(x, (x.shape[0], -1))
                return torch.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(self.shape)])

        return StaticReshape(shape)


def _check_against_onnxruntime(module: Any, onnx_path: Path, inputs: Sequence[TensorSpec], name: str) -> None:
    import onnxruntime as ort
    import torch

    rng = np.random.default_rng(0)
    feeds = {spec.name: rng.standard_normal(spec.shape).astype(spec.dtype) for spec in inputs}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    try:
        with torch.no_grad():
            produced = module(*(torch.from_numpy(feeds[spec.name]) for spec in inputs))
    except Exception as exc:
        raise ModelError(f"the PyTorch form of '{name}' (onnx2torch) fails to run: "
                         f"{one_line(exc, 200, typed=True)}") from None
    produced = produced if isinstance(produced, (tuple, list)) else (produced,)
    for index, (want, got) in enumerate(zip(expected, produced)):
        got_np = got.detach().numpy()
        scale = max(float(np.abs(want).max()), 1.0)
        if got_np.shape != want.shape or float(np.abs(got_np - want).max()) > ATOL * scale:
            err = "shape " + str(got_np.shape) if got_np.shape != want.shape else f"max abs error {np.abs(got_np - want).max():.3g}"
            raise ModelError(f"the PyTorch form of '{name}' (onnx2torch) does not reproduce ONNX Runtime on output "
                             f"{index} ({err}); its PyTorch-based candidates are not built")
