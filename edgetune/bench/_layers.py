"""Per-layer profiles: each layer's time as the runtime's own profiler (or the simulator) reports it.

A ``LayerProfile`` is one candidate's layers with the share of the end-to-end median they add
up to: a profiler times its nodes, not what runs between them (the executor, copies, threads
waking up), and profiling itself costs time, so the sum rarely equals the end-to-end latency.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from edgetune.runners import NodeTime

# Where each runtime's per-layer figures come from (what a table or report says beside them).
LAYER_SOURCES = {
    "onnxruntime": "ONNX Runtime profiler (enable_profiling): kernel time per node of the optimized graph",
    "tvm": "Relax VM instrument: each compiled function timed around its call",
    "openvino": "OpenVINO performance counters (PERF_COUNT): real time per executed node",
    "vela": "Vela per-layer estimate (--verbose-performance) at the NPU clock: SIMULATED",
    "scalesim": "SCALE-Sim per-layer cycles at the array clock: SIMULATED",
}
SIMULATED_RUNTIMES = ("vela", "scalesim")
CSV_COLUMNS = ("candidate", "runtime", "rank", "layer", "op_type", "latency_ms", "min_ms", "share_of_layers",
               "share_of_end_to_end", "simulated")


@dataclass(frozen=True)
class LayerTime:
    """One layer (node of the optimized graph, compiled function, or simulated operator) and its time."""

    name: str
    op_type: str
    latency_ms: float
    min_ms: float


@dataclass(frozen=True)
class LayerProfile:
    """One candidate's layers in execution order, and how they relate to its end-to-end median."""

    candidate: str
    runtime: str
    layers: tuple[LayerTime, ...] = ()
    end_to_end_ms: Optional[float] = None
    simulated: bool = False
    source: str = ""
    note: str = ""  # why there are no layers (no per-layer profiler, a failure)
    runs: int = 0  # profiled runs after warm-up (0 for simulated figures)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def layers_ms(self) -> float:
        """The layers' times added up."""
        return sum(layer.latency_ms for layer in self.layers)

    @property
    def coverage(self) -> Optional[float]:
        """Share of the end-to-end median the layers add up to (None without both)."""
        if not self.layers or not self.end_to_end_ms:
            return None
        return self.layers_ms / self.end_to_end_ms

    def top(self, count: int) -> list[LayerTime]:
        """The ``count`` slowest layers, slowest first (ties keep execution order)."""
        return sorted(self.layers, key=lambda layer: -layer.latency_ms)[: max(count, 0)]

    def share(self, layer: LayerTime) -> float:
        """``layer``'s share of the layers' sum."""
        total = self.layers_ms
        return layer.latency_ms / total if total > 0 else 0.0

    def coverage_line(self) -> str:
        """One sentence on what share of the end-to-end time the layers add up to."""
        if not self.layers:
            return f"{self.candidate}: no per-layer figures ({self.note or 'none reported'})"
        label = " (SIMULATED)" if self.simulated else ""
        if self.coverage is None:
            return f"{self.candidate}{label}: {len(self.layers)} layers add up to {self.layers_ms:.4f} ms"
        return (f"{self.candidate}{label}: {len(self.layers)} layers add up to {self.layers_ms:.4f} ms, "
                f"{self.coverage:.0%} of the end-to-end median {self.end_to_end_ms:.4f} ms")

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate, "runtime": self.runtime, "simulated": self.simulated, "source": self.source,
            "note": self.note, "runs": self.runs, "end_to_end_ms": self.end_to_end_ms, "layers_ms": self.layers_ms,
            "coverage": self.coverage, **self.extra,
            "layers": [{"name": layer.name, "op_type": layer.op_type, "latency_ms": layer.latency_ms,
                        "min_ms": layer.min_ms, "share_of_layers": self.share(layer)} for layer in self.layers],
        }


def layer_profile(candidate: str, runtime: str, nodes: Optional[Sequence[NodeTime]], end_to_end_ms: Optional[float],
                  runs: int = 0, note: str = "") -> LayerProfile:
    """A LayerProfile from a runner's ``node_times`` (None: the runtime has no per-layer profiler, ``note`` says why)."""
    simulated = runtime in SIMULATED_RUNTIMES
    if nodes is None:
        return LayerProfile(candidate, runtime, (), end_to_end_ms, simulated, LAYER_SOURCES.get(runtime, ""),
                            note or f"runtime {runtime} has no per-layer profiler in edgetune")
    layers = tuple(LayerTime(n.name, n.op_type, float(n.latency_ms), float(n.min_ms)) for n in nodes)
    return LayerProfile(candidate, runtime, layers, end_to_end_ms, simulated, LAYER_SOURCES.get(runtime, runtime),
                        note, 0 if simulated else runs)


def write_layers_json(profiles: Sequence[LayerProfile], path: Path) -> Path:
    """Every profile, every layer, as JSON."""
    path.write_text(json.dumps({"per_layer": [p.to_dict() for p in profiles]}, indent=1))
    return path


def write_layers_csv(profiles: Sequence[LayerProfile], path: Path) -> Path:
    """One row per layer (ranked slowest first within its candidate), the columns in CSV_COLUMNS."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for profile in profiles:
            for rank, layer in enumerate(profile.top(len(profile.layers)), start=1):
                of_end = layer.latency_ms / profile.end_to_end_ms if profile.end_to_end_ms else ""
                writer.writerow([profile.candidate, profile.runtime, rank, layer.name, layer.op_type,
                                 f"{layer.latency_ms:.6f}", f"{layer.min_ms:.6f}", f"{profile.share(layer):.4f}",
                                 f"{of_end:.4f}" if of_end != "" else "", int(profile.simulated)])
    return path
