"""`predict --compare-measured`: each kernel's predicted time beside what the runtime's profiler measured.

The network is built for the runtime (the ONNX file itself for ONNX Runtime, the runtime's fp32
lowering otherwise), run through ``Runner.node_times`` with the profile's thread count, and the
profiler's nodes are attributed back to the predictor's kernels the way the profile learnt them
(by node name for ONNX Runtime, by call order for TVM: ``_context.attribute_nodes``). A kernel
the attribution cannot place has no measured time; the totals say how much that leaves out.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from edgetune.errors import ConfigError
from edgetune.predict._base import LatencyEstimate
from edgetune.predict._context import attribute_nodes
from edgetune.predict._fusion import split_kernels
from edgetune.predict._graph import Graph, graph_from_onnx, to_onnx
from edgetune.targets import Target


@dataclass(frozen=True)
class KernelComparison:
    """One kernel: predicted (on the end-to-end scale) and measured (the profiler's nodes attributed to it)."""

    kind: str
    ops: tuple[str, ...]
    predicted_ms: float
    measured_ms: Optional[float]

    @property
    def ratio(self) -> Optional[float]:
        """measured / predicted (above 1: the predictor is optimistic)."""
        if self.measured_ms is None or self.predicted_ms <= 0:
            return None
        return self.measured_ms / self.predicted_ms


@dataclass(frozen=True)
class MeasuredComparison:
    """A prediction and the runtime's own per-node measurement of the same network, kernel by kernel."""

    estimate: LatencyEstimate
    runtime: str
    kernels: tuple[KernelComparison, ...]
    measured_layers_ms: float  # every profiled node, attributed or not
    attributed: bool  # False: the nodes could not be mapped to kernels (only totals compare)
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.estimate.network, "runtime": self.runtime, "threads": self.threads,
            "predicted_total_ms": self.estimate.total_ms, "measured_layers_ms": self.measured_layers_ms,
            "attributed": self.attributed, "machine_correction": self.estimate.extra.get("machine_correction"),
            "kernels": [{"kind": k.kind, "ops": list(k.ops), "predicted_ms": k.predicted_ms, "measured_ms": k.measured_ms,
                         "measured_over_predicted": k.ratio} for k in self.kernels],
        }


def _onnx_of(model: Union[Graph, Path], folder: Path) -> tuple[Graph, Path]:
    if isinstance(model, Graph):
        return model, to_onnx(model, folder / f"{model.name}.onnx")
    graph, _skipped = graph_from_onnx(Path(model))
    return graph, Path(model)


def _artifact(onnx_path: Path, target: Target, runtime: str, folder: Path) -> Path:
    """What ``runtime`` runs for this network: the ONNX file, or the runtime's first fp32 unpruned build of it."""
    from edgetune.lowering import LoweringContext
    from edgetune.models import load_model
    from edgetune.pipeline import build_artifact, plans_for

    if runtime == "onnxruntime":
        return onnx_path
    plans = [p for p in plans_for(target, [runtime]) if p.precision == "fp32" and p.exact]
    if not plans:
        raise ConfigError(f"--compare-measured: target '{target.name}' has no fp32 build for runtime {runtime}")
    model = load_model(onnx_path, workdir=folder / "model")
    return build_artifact(plans[0], model, target, folder, LoweringContext(), {}).path


def compare_measured(model: Union[Graph, Path], target: Target, runtime: str, predictor: Any,
                     runs: int = 40, warmup: int = 10) -> MeasuredComparison:
    """Predict ``model`` with ``predictor`` (a KernelPredictor) and measure it per node on ``runtime``, side by side."""
    from edgetune.bench import isolated, random_inputs
    from edgetune.models import load_model
    from edgetune.runners import get_runner

    if not hasattr(predictor, "rules") or predictor.name != "kernel":
        raise ConfigError("--compare-measured needs the kernel predictor (the flops baseline has no per-kernel breakdown)")
    with tempfile.TemporaryDirectory(prefix="edgetune-compare-") as tmp:
        folder = Path(tmp)
        graph, onnx_path = _onnx_of(model, folder)
        estimate = predictor.predict(graph)
        artifact = _artifact(onnx_path, target, runtime, folder)
        inputs = load_model(onnx_path, workdir=folder / "inputs").inputs
        nodes = isolated(get_runner(runtime)).node_times(artifact, predictor.threads, random_inputs(inputs, seed=0)[0], runs, warmup)
    if nodes is None:
        raise ConfigError(f"--compare-measured: runtime {runtime} has no per-node profiler in edgetune "
                          "(onnxruntime, tvm and openvino have)")
    kernels = split_kernels(graph, predictor.rules)
    measured = attribute_nodes(graph, kernels, [(n.name, n.op_type, n.latency_ms) for n in nodes])
    by_ops = {k.ops: (measured[i] if measured is not None else None) for i, k in enumerate(kernels)}
    rows = tuple(KernelComparison(k.kind, k.ops, k.latency_ms, by_ops.get(k.ops)) for k in estimate.kernels)
    return MeasuredComparison(estimate, runtime, rows, sum(n.latency_ms for n in nodes), measured is not None,
                              predictor.threads)
