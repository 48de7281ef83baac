"""Load ONNX, TFLite and PyTorch models (files or factories) into a LoadedModel."""

from __future__ import annotations

import importlib
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from edgetune._lazy import require
from edgetune._quiet import quiet_logger
from edgetune.errors import InputShapeError, ModelError, one_line, reraise_as
from edgetune.models._spec import LoadedModel, ShapeArg, TensorSpec, check_shape, sha256_of

FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
TORCHSCRIPT_SUFFIXES = {".pt", ".pth", ".ts", ".torchscript"}


def load_model(
    model: Union[str, Path, Any],
    input_shape: ShapeArg = None,
    workdir: Optional[Path] = None,
) -> LoadedModel:
    """Load a model file (.onnx, .tflite, .pt2, TorchScript), a ``pkg.module:factory`` or an nn.Module.

    ONNX is the exchange format: PyTorch models are exported to ONNX in ``workdir``.
    """
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="edgetune-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not isinstance(model, (str, Path)):
        return _from_torch_module(model, type(model).__name__, "<in-memory>", input_shape, workdir)
    text = str(model)
    path = Path(text)
    if not path.exists():
        if FACTORY_RE.match(text):
            return _from_factory(text, input_shape, workdir)
        raise ModelError(f"model file '{text}' does not exist; give a .onnx/.tflite/.pt2/TorchScript file or pkg.module:factory")
    if path.is_dir():
        raise ModelError(f"'{text}' is a folder; give a model file")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return _from_tflite(path, input_shape)
    if suffix == ".pt2":
        return _from_exported_program(path, input_shape, workdir)
    if suffix in TORCHSCRIPT_SUFFIXES:
        return _from_torchscript(path, input_shape, workdir)
    return _from_onnx(path, input_shape, workdir)


# --- ONNX ---------------------------------------------------------------------------------


def _shape_for(name: str, index: int, count: int, input_shape: ShapeArg) -> Optional[tuple[int, ...]]:
    if input_shape is None:
        return None
    if isinstance(input_shape, Mapping):
        return tuple(input_shape[name]) if name in input_shape else None
    if count > 1:
        raise InputShapeError(f"the model has {count} inputs; give --input-shape NAME:SHAPE for each")
    return tuple(input_shape)


def _onnx_dims(value_info: Any) -> list[Optional[int]]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]


def _from_onnx(path: Path, input_shape: ShapeArg, workdir: Path, source: Optional[str] = None) -> LoadedModel:
    import onnx

    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise ModelError(f"'{path}' is not a valid ONNX model ({one_line(exc, 200)}); export it again or check the file") from None
    initializers = {init.name for init in proto.graph.initializer}
    graph_inputs = [i for i in proto.graph.input if i.name not in initializers]
    if isinstance(input_shape, Mapping):
        unknown = set(input_shape) - {i.name for i in graph_inputs}
        if unknown:
            raise InputShapeError(
                f"--input-shape names unknown input(s) {sorted(unknown)}; the model's inputs are {[i.name for i in graph_inputs]}"
            )
    changed = False
    specs = []
    for index, value in enumerate(graph_inputs):
        declared = _onnx_dims(value)
        given = _shape_for(value.name, index, len(graph_inputs), input_shape)
        shape = _resolve_dims(value.name, declared, given)
        if any(d is None for d in declared) or (given is not None and tuple(declared) != shape):
            changed = True
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shape):
                dim.Clear()
                dim.dim_value = size
        dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name
        specs.append(TensorSpec(value.name, shape, dtype))
    if changed:
        for out in proto.graph.output:  # let shape inference recompute fixed output shapes
            for dim in out.type.tensor_type.shape.dim:
                if not dim.HasField("dim_value"):
                    dim.Clear()
        fixed = workdir / f"{path.stem}.static.onnx"
        onnx.save(proto, str(fixed))
        onnx_path = fixed
    else:
        onnx_path = path
    inferred = onnx.shape_inference.infer_shapes(proto)
    outputs = tuple(
        TensorSpec(
            o.name,
            tuple(d if d is not None else -1 for d in _onnx_dims(o)),
            onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type).name,
        )
        for o in inferred.graph.output
    )
    return LoadedModel(
        name=path.stem,
        source=source or str(path),
        source_format="onnx",
        sha256=sha256_of(path),
        inputs=tuple(specs),
        outputs=outputs,
        onnx_path=onnx_path,
    )


def _resolve_dims(name: str, declared: list[Optional[int]], given: Optional[tuple[int, ...]]) -> tuple[int, ...]:
    pretty = "x".join(str(d) if d is not None else "?" for d in declared)
    if given is None:
        if any(d is None for d in declared):
            raise InputShapeError(f"input '{name}' has dynamic dimensions ({pretty}); pass --input-shape, e.g. 1x3x224x224")
        return tuple(d for d in declared if d is not None)
    check_shape(given, what=f"input shape for '{name}'")
    if len(given) != len(declared):
        raise InputShapeError(
            f"input '{name}' has rank {len(declared)} ({pretty}) but --input-shape gives {len(given)} dimensions"
        )
    for want, have in zip(declared, given):
        if want is not None and want != have:
            raise InputShapeError(
                f"input '{name}' is fixed at {pretty}; --input-shape {'x'.join(map(str, given))} does not match it"
            )
    return given


# --- TFLite -------------------------------------------------------------------------------


def _from_tflite(path: Path, input_shape: ShapeArg) -> LoadedModel:
    head = path.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelError(f"'{path}' is not a TFLite flatbuffer (missing TFL3 identifier); convert the model again")
    interpreter_mod = require("ai_edge_litert.interpreter", "litert")
    with reraise_as(ModelError, f"'{path}' cannot be read by LiteRT", 200):
        interp = interpreter_mod.Interpreter(model_path=str(path))
    inputs = tuple(
        TensorSpec(d["name"], tuple(int(x) for x in d["shape"]), d["dtype"].__name__)
        for d in interp.get_input_details()
    )
    for index, spec in enumerate(inputs):
        given = _shape_for(spec.name, index, len(inputs), input_shape)
        if given is not None and given != spec.shape:
            raise InputShapeError(
                f"input '{spec.name}' of this TFLite model is fixed at {'x'.join(map(str, spec.shape))}; --input-shape does not match it"
            )
    outputs = tuple(
        TensorSpec(d["name"], tuple(int(x) for x in d["shape"]), d["dtype"].__name__)
        for d in interp.get_output_details()
    )
    return LoadedModel(
        name=path.stem, source=str(path), source_format="tflite", sha256=sha256_of(path),
        inputs=inputs, outputs=outputs, tflite_path=path,
    )


# --- PyTorch ------------------------------------------------------------------------------


def _single_shape(input_shape: ShapeArg, what: str) -> tuple[int, ...]:
    if input_shape is None:
        raise InputShapeError(f"{what} carries no input shape; pass --input-shape, e.g. 1x3x224x224")
    if isinstance(input_shape, Mapping):
        if len(input_shape) != 1:
            raise InputShapeError(f"{what}: PyTorch models take one input here; give one --input-shape")
        input_shape = next(iter(input_shape.values()))
    shape = tuple(int(d) for d in input_shape)
    check_shape(shape, what="--input-shape")
    return shape


def _from_factory(spec: str, input_shape: ShapeArg, workdir: Path) -> LoadedModel:
    import os
    import sys

    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path:  # console scripts do not put the current folder on sys.path; users expect it
        sys.path.insert(0, cwd)
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"cannot import factory '{spec}' ({exc}); check the module is on PYTHONPATH") from None
    try:
        module = factory()
    except Exception as exc:
        raise ModelError(f"factory '{spec}' failed: {type(exc).__name__}: {exc}") from None
    return _from_torch_module(module, attr, spec, input_shape, workdir)


def _from_torch_module(module: Any, name: str, source: str, input_shape: ShapeArg, workdir: Path) -> LoadedModel:
    torch = require("torch", "torch")
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"'{source}' gave a {type(module).__name__}, not a torch.nn.Module")
    shape = _single_shape(input_shape, f"PyTorch model '{source}'")
    module = module.eval()
    onnx_path = workdir / f"{name}.onnx"
    export_module_to_onnx(module, shape, onnx_path, source)
    loaded = _from_onnx(onnx_path, None, workdir, source=source)
    return _with_torch(loaded, module, name, source, _module_hash(module))


def export_module_to_onnx(module: Any, shape: tuple[int, ...], onnx_path: Path, source: str) -> None:
    """Export an nn.Module (one input of ``shape``) to a self-contained ONNX file."""
    torch = require("torch", "torch")
    _export_onnx(lambda: torch.onnx.export(
        module, (torch.zeros(shape),), str(onnx_path), dynamo=True, external_data=False, input_names=["input"],
        output_names=["output"], optimize=True, verbose=False,
    ), source)


def _from_exported_program(path: Path, input_shape: ShapeArg, workdir: Path) -> LoadedModel:
    torch = require("torch", "torch")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelError(
            f"'{path}' is not a loadable ExportedProgram ({type(exc).__name__}); save it with torch.export.save"
        ) from None
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
    example_shapes = [tuple(int(d) for d in n.meta["val"].shape) for n in placeholders if "val" in n.meta]
    if len(example_shapes) != 1:
        raise ModelError(f"'{path}' has {len(example_shapes)} inputs; edgetune takes single-input PyTorch programs")
    shape = example_shapes[0]
    if input_shape is not None and _single_shape(input_shape, str(path)) != shape:
        raise InputShapeError(f"'{path}' was exported for input {'x'.join(map(str, shape))}; --input-shape does not match it")
    onnx_path = workdir / f"{path.stem}.onnx"
    _export_onnx(lambda: torch.onnx.export(
        program, (torch.zeros(shape),), str(onnx_path), dynamo=True, external_data=False, input_names=["input"], output_names=["output"],
        optimize=True, verbose=False,
    ), str(path))
    loaded = _from_onnx(onnx_path, None, workdir, source=str(path))
    return _with_torch(loaded, program.module(), path.stem, str(path), sha256_of(path))


def _from_torchscript(path: Path, input_shape: ShapeArg, workdir: Path) -> LoadedModel:
    torch = require("torch", "torch")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception:
        raise ModelError(
            f"'{path}' is not a TorchScript archive (a state_dict holds weights only); "
            "give a TorchScript file, an ExportedProgram (.pt2) or pkg.module:factory"
        ) from None
    shape = _single_shape(input_shape, f"TorchScript model '{path}'")
    onnx_path = workdir / f"{path.stem}.onnx"
    _export_onnx(lambda: torch.onnx.export(
        module, (torch.zeros(shape),), str(onnx_path), dynamo=False, input_names=["input"], output_names=["output"],
    ), str(path))
    loaded = _from_onnx(onnx_path, None, workdir, source=str(path))
    # TorchScript cannot go through torch.export, so no LiteRT conversion from it.
    return _with_torch(loaded, None, path.stem, str(path), sha256_of(path))


def _export_onnx(export: Any, source: str) -> None:
    # the exporter logs one warning per missing optional op library (torchvision ...) on every call
    with quiet_logger("torch.onnx"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with reraise_as(ModelError, f"cannot export '{source}' to ONNX"):
            export()


def _module_hash(module: Any) -> str:
    import hashlib

    digest = hashlib.sha256(type(module).__qualname__.encode())
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _with_torch(loaded: LoadedModel, module: Any, name: str, source: str, digest: str) -> LoadedModel:
    from dataclasses import replace

    return replace(loaded, name=name, source=source, source_format="torch", sha256=digest, torch_module=module)
