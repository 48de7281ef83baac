"""The Predictor extension point: a network in, a latency estimate with a per-kernel breakdown out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence, Union

from edgetune.errors import EdgetuneError
from edgetune.predict._graph import Graph, graph_from_onnx


class ProfileError(EdgetuneError):
    """A profile folder is missing, corrupt or from a different setup."""


@dataclass(frozen=True)
class KernelEstimate:
    """One kernel (ops the runtime fuses and runs as one) and its predicted latency."""

    kind: str  # e.g. "conv+bn+relu"
    ops: tuple[str, ...]
    latency_ms: float
    macs: int
    estimated: str = ""  # how, when the profile has no regressor for the kind (``_estimate``); "" when predicted


@dataclass(frozen=True)
class LatencyEstimate:
    """A *predicted* latency (never a measurement): total, an interval, and where it comes from."""

    network: str
    total_ms: float
    low_ms: float
    high_ms: float
    predictor: str
    kernels: tuple[KernelEstimate, ...] = ()
    uncovered: tuple[str, ...] = ()  # ops the predictor could not cost (left out of the total; none for a kernel predictor)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def estimated_ms(self) -> float:
        """The part of the total costed by estimate rather than by a profiled regressor."""
        return sum(k.latency_ms for k in self.kernels if k.estimated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network, "predicted": True, "total_ms": self.total_ms, "low_ms": self.low_ms,
            "high_ms": self.high_ms, "predictor": self.predictor, "uncovered": list(self.uncovered),
            "kernels": [{"kind": k.kind, "ops": list(k.ops), "latency_ms": k.latency_ms, "macs": k.macs,
                         **({"estimated": k.estimated} if k.estimated else {})} for k in self.kernels],
            "estimated_ms": self.estimated_ms,
            **self.extra,
        }


ModelLike = Union[Graph, Path, str]


class Predictor(ABC):
    """Predicts a network's latency on one target and runtime."""

    name: ClassVar[str]
    threads: int = 1  # the thread count its latencies are for (measure a prediction's network with the same)

    @abstractmethod
    def predict_many(self, graphs: Sequence[Graph]) -> list[LatencyEstimate]:
        """Predict several networks at once (the search's hot path: batch the regressors)."""

    def predict(self, model: ModelLike) -> LatencyEstimate:
        """Predict one network given as a Graph or an ONNX file."""
        if isinstance(model, Graph):
            return self.predict_many([model])[0]
        graph, _other = graph_from_onnx(Path(model))  # operators without a kind are "other" ops: estimated
        return self.predict_many([graph])[0]
