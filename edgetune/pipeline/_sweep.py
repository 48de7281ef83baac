"""Input-shape sweeps and batch sizes for `edgetune bench` (benchmark_app's ``-shape`` and ``-b``).

Every point of a sweep is measured by ``benchmark`` under one run id, so a sweep is one run in
the results store with one row per (shape, candidate).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from edgetune.errors import ConfigError, InputShapeError
from edgetune.models import parse_shape_option
from edgetune.models._spec import ShapeArg, check_shape, parse_shape
from edgetune.pipeline._evaluate import Evaluation

MAX_BATCH = 4096


@dataclass(frozen=True)
class SweepPoint:
    """One measured shape: its label in tables, the shapes given to the loader, and the batch for throughput."""

    label: str
    shape: ShapeArg
    batch: int


@dataclass(frozen=True)
class SweepResult:
    """One point of a sweep and what ``benchmark`` measured at it."""

    point: SweepPoint
    evaluation: Evaluation


def parse_shape_sweep(values: Sequence[str]) -> list[ShapeArg]:
    """Repeated --input-shape values -> the shapes to measure, one per sweep point.

    ``NAME:SHAPE`` values with distinct names describe the inputs of one point (a multi-input model);
    otherwise every value is a point of its own: ``SHAPE`` for a single-input model, or
    ``NAME:SHAPE;NAME:SHAPE`` for all inputs of a multi-input model.
    """
    if not values:
        return [None]
    names = [v.rpartition(":")[0] for v in values]
    if len(values) > 1 and all(names) and len(set(names)) == len(names) and not any(";" in v for v in values):
        return [parse_shape_option(values)]  # several inputs, one point (as before sweeps existed)
    points: list[ShapeArg] = []
    for value in values:
        parts = [p for p in value.split(";") if p.strip()]
        if not parts:
            raise InputShapeError(f"empty --input-shape '{value}'; give e.g. 1x3x224x224")
        if len(parts) == 1 and not parts[0].rpartition(":")[1]:
            points.append(parse_shape(parts[0]))
            continue
        if any(not p.rpartition(":")[1] for p in parts):
            raise InputShapeError(f"--input-shape '{value}' mixes named and unnamed shapes; write NAME:SHAPE;NAME:SHAPE")
        points.append(parse_shape_option(parts))
    return points


def shape_label(shape: ShapeArg) -> str:
    """'1x3x32x32', 'a:1x4;b:1x4', or 'model' for the model's own shapes."""
    if shape is None:
        return "model"
    if isinstance(shape, Mapping):
        return ";".join(f"{name}:{'x'.join(map(str, dims))}" for name, dims in shape.items())
    return "x".join(map(str, shape))


def declared_shapes(model: Any) -> ShapeArg:
    """The input shapes a model file declares (an ONNX file's, a TFLite file's); None when it declares none."""
    if isinstance(model, (str, Path)) and str(model).lower().endswith(".onnx") and Path(model).is_file():
        import onnx

        proto = onnx.load(str(model), load_external_data=False)
        initializers = {init.name for init in proto.graph.initializer}
        shapes = {}
        for value in proto.graph.input:
            if value.name in initializers:
                continue
            dims = value.type.tensor_type.shape.dim
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in dims]
        return shapes
    if isinstance(model, (str, Path)) and str(model).lower().endswith(".tflite") and Path(model).is_file():
        import tempfile

        from edgetune.models import load_model

        with tempfile.TemporaryDirectory() as tmp:
            return {spec.name: list(spec.shape) for spec in load_model(model, workdir=Path(tmp)).inputs}
    return None


def with_batch(shape: ShapeArg, batch: int, model: Any) -> ShapeArg:
    """``shape`` (or the model's declared shapes) with the leading dimension of every input set to ``batch``."""
    if batch < 1 or batch > MAX_BATCH:
        raise ConfigError(f"--batch-size must be between 1 and {MAX_BATCH}, got {batch}")
    base = shape if shape is not None else declared_shapes(model)
    if base is None:
        raise InputShapeError("--batch-size needs --input-shape for this model (only .onnx and .tflite files "
                              "declare their input shapes)")
    named = dict(base) if isinstance(base, Mapping) else {"": base}
    out = {}
    for name, dims in named.items():
        dims = list(dims)
        if not dims:
            raise InputShapeError(f"input '{name}' is a scalar: it has no batch dimension for --batch-size")
        if any(d <= 0 for d in dims[1:]):
            raise InputShapeError(f"input '{name}' has dynamic dimensions besides the batch; pass --input-shape as well")
        dims[0] = batch
        check_shape(dims, f"input shape for '{name or 'the input'}' at --batch-size {batch}")
        out[name] = tuple(dims)
    return out[""] if "" in out else out


def sweep_points(values: Sequence[str], batch_size: Optional[int], model: Any) -> list[SweepPoint]:
    """What `bench` measures: each --input-shape point, with --batch-size applied to it."""
    points = []
    for shape in parse_shape_sweep(values):
        if batch_size is not None:
            shape = with_batch(shape, batch_size, model)
        points.append(SweepPoint(shape_label(shape), shape, batch_size or _leading(shape)))
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--input-shape gives the same shape twice ({', '.join(labels)}); each point once")
    return points


def _leading(shape: ShapeArg) -> int:
    """The batch a shape implies: the first input's leading dimension when it has two or more, else 1."""
    if shape is None:
        return 1
    dims = next(iter(shape.values())) if isinstance(shape, Mapping) else shape
    return int(dims[0]) if len(dims) >= 2 else 1


def benchmark_sweep(model: Any, points: Sequence[SweepPoint], **kwargs: Any) -> list[SweepResult]:
    """``benchmark`` at every point, under one run id (``kwargs`` as for ``benchmark``, without input_shape)."""
    from edgetune.bench import git_commit, new_run_id
    from edgetune.pipeline._run import benchmark

    if not points:
        raise ConfigError("a sweep needs at least one shape")
    run_id = kwargs.pop("run_id", None) or new_run_id(git_commit())
    labels = kwargs.pop("labels", None)
    results = []
    for point in points:
        progress = kwargs.get("progress")
        if progress is not None and len(points) > 1:
            progress(f"shape {point.label}")
        # each shape is an entry of the run, so that `bench compare` matches shapes, not just candidates
        point_labels = labels if labels is not None or len(points) == 1 else {"entry": f"shape {point.label}"}
        evaluation = benchmark(model, input_shape=point.shape, run_id=run_id, labels=point_labels, **kwargs)
        batch = point.batch if point.shape is not None else _leading(tuple(evaluation.model.inputs[0].shape))
        if len(points) > 1:  # one profile per (candidate, shape): say which shape it is
            for result in evaluation.results:
                if result.layers is not None:
                    result.layers = replace(result.layers, candidate=f"{result.name}@{point.label}")
        results.append(SweepResult(SweepPoint(point.label, point.shape, batch), evaluation))
    return results
