"""The Runner extension point: load an artifact, feed inputs, invoke, read outputs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, ContextManager, Mapping, Optional, Sequence

import numpy as np

from edgetune._availability import Availability
from edgetune.errors import ConfigError

if TYPE_CHECKING:
    from edgetune.targets import Target


class Session(ABC):
    """A loaded artifact ready to run. ``invoke`` is what the harness times."""

    @abstractmethod
    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Bind input arrays (copying them into the runtime's buffers if it has any)."""

    @abstractmethod
    def invoke(self) -> None:
        """Run one inference on the bound inputs."""

    @abstractmethod
    def outputs(self) -> list[np.ndarray]:
        """Outputs of the last ``invoke`` as numpy arrays, in the model's output order."""

    def device_timed(self, count: int) -> Optional[list[float]]:
        """``count`` latencies in ms timed on the device itself, or None to let the harness time ``invoke``.

        Remote and simulated sessions override this: a board's own timer (e.g. TVM's
        time_evaluator over RPC) excludes the network round trip; a simulator returns its
        deterministic estimate.
        """
        return None

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Bind, invoke once and return outputs."""
        self.set_inputs(feeds)
        self.invoke()
        return self.outputs()

    def run_many(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[list[np.ndarray]]:
        """``run`` each feed in turn (a session in another process does it in one request)."""
        return [self.run(f) for f in feeds]

    def close(self) -> None:
        """Release runtime resources (optional)."""

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class NodeTime:
    """One node of an optimized graph as the runtime ran it: its name, operator and in-network latency."""

    name: str
    op_type: str
    latency_ms: float  # mean of the faster half of the profiled runs (robust to interference, finer than the
    # profiler's one-microsecond ticks)
    min_ms: float = 0.0  # the fastest run


class Runner(ABC):
    """One runtime (or transport, or simulator) that runs artifacts of one format."""

    name: ClassVar[str]
    artifact_format: ClassVar[str]
    modules: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # where it runs artifacts; those with more take ``device=``
    # whether this machine's clock times its sessions (the harness times ``invoke``); boards and simulators
    # time themselves (``Session.device_timed``), so the harness has nothing to isolate for them
    host_timed: ClassVar[bool] = True

    @classmethod
    def on_device(cls, device: str = "cpu") -> "Runner":
        """This runner running artifacts on ``device`` ("cpu", or "cuda": an NVIDIA GPU)."""
        if device not in cls.devices:
            raise ConfigError(f"runtime {cls.name} has no {device} path in this edgetune (it runs on: "
                              f"{', '.join(cls.devices)}); pick another of the target's runtimes")
        return cls() if device == "cpu" else cls(device=device)  # type: ignore[call-arg]

    @classmethod
    def availability(cls) -> Availability:
        """Whether the runtime is installed here."""
        return Availability.of_modules(cls.modules, cls.extra)

    @abstractmethod
    def load(self, artifact: Path, threads: int) -> Session:
        """Load ``artifact`` into a Session running on ``threads`` threads."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Library versions that determine this runner's results (for fingerprints)."""

    def reusing(self) -> ContextManager[None]:
        """A scope in which what a closed session held (a board's RPC connection) serves the next session
        instead of being set up anew; released when the scope ends. Local runners keep nothing."""
        return nullcontext()

    @property
    def profiles_nodes(self) -> bool:
        """Whether this runner reports per-node times inside a network (overrides ``node_times``)."""
        return type(self).node_times is not Runner.node_times

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,
                   warmup: int = 10) -> Optional[list[NodeTime]]:
        """Per-node latencies of ``artifact`` run on ``feeds``, as the runtime's own profiler sees them
        inside the network, in execution order; None when the runtime has no per-node profiler."""
        return None


def device_for(target: "Target") -> str:
    """Where ``target`` runs artifacts: "cuda" on an NVIDIA GPU target, else "cpu"."""
    if target.kind == "gpu" and target.gpu is not None and target.gpu.vendor == "nvidia":
        return "cuda"
    return "cpu"
