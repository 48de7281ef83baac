"""A fake fast runtime for profiling tests: latency computed from the ONNX graph, no waiting.

Its "hardware" fuses bn and relu into a preceding conv/dwconv (they cost nothing there) and
charges every kernel a fixed launch cost plus MACs and memory terms, so the profiler's fusion
detection and regressors have something exact to recover.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Optional

import numpy as np
import pytest

from edgetune.predict import FusionRules, Predictor, graph_from_onnx, split_kernels
from edgetune.runners import Runner, Session

FAKE_RULES = FusionRules(frozenset({("conv", "bn"), ("conv", "relu"), ("dwconv", "bn"), ("dwconv", "relu")}))
CALL_MS = 0.01


def fake_latency_ms(graph) -> float:  # type: ignore[no-untyped-def]
    total = CALL_MS
    for kernel in split_kernels(graph, FAKE_RULES):
        op = kernel.head
        total += 0.002 + op.macs * 2e-8 + (op.in_elems + kernel.tail.out_elems) * 1e-7
    return total


class FakeSession(Session):
    def __init__(self, latency_ms: float, runner: "FakeRunner") -> None:
        self.latency_ms = latency_ms
        self.runner = runner

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        pass

    def invoke(self) -> None:
        pass

    def outputs(self) -> list[np.ndarray]:
        return []

    def device_timed(self, count: int) -> Optional[list[float]]:
        return [self.latency_ms] * count


class FakeRunner(Runner):
    """``interrupt_after`` loads raise KeyboardInterrupt (a Ctrl-C mid-profile)."""

    name = "fake"
    artifact_format = "onnx"

    def __init__(self, interrupt_after: Optional[int] = None) -> None:
        self.loads = 0
        self.interrupt_after = interrupt_after

    def load(self, artifact: Path, threads: int) -> Session:
        self.loads += 1
        if self.interrupt_after is not None and self.loads > self.interrupt_after:
            raise KeyboardInterrupt
        graph, _ = graph_from_onnx(artifact)
        return FakeSession(fake_latency_ms(graph), self)

    def versions(self) -> dict[str, str]:
        return {"fake": "1.0"}


@contextmanager
def rounds_clock(rounds: int) -> Iterator[list[int]]:
    """Profiles in this block measure ``rounds`` rounds (networks, border pairs, kernels) whatever their
    budget: their clock counts rounds instead of seconds, so a loaded machine measures what a quick one
    does (a budget of seconds fitted one or two rounds here, and too few on CI's loaded machine). Yields the
    rounds done."""
    from edgetune.predict._profile import KernelProfiler

    done: list[int] = []
    measure_round = KernelProfiler.measure_round

    def counted(self: KernelProfiler) -> bool:
        try:
            return measure_round(self)
        finally:
            done.append(len(self.rows))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KernelProfiler, "measure_round", counted)
        # half a round in: never zero (re-timing is capped at a share of it), under the budget until the last round
        patch.setattr(KernelProfiler, "elapsed", lambda self: self.budget_s * min((len(done) + 0.5) / rounds, 1.0))
        yield done


def build_fake_profile(root: Path, budget_min: float = 0.2):  # type: ignore[no-untyped-def]
    """A profile of the fake runtime for host-cpu under ``root``: one round of measurements (some 200 kernels,
    15-20 s), the same on any machine."""
    from edgetune.predict import GraphMeasurer, profile
    from edgetune.predict._measure import KERNEL_CONFIG
    from edgetune.targets import load_target

    target = load_target("host-cpu")
    with rounds_clock(1), GraphMeasurer(target, "fake", 1, config=KERNEL_CONFIG, runner=FakeRunner()) as measurer:
        return profile(target, "fake", budget_min, root, measurer=measurer)


class FakeNodeRunner(FakeRunner):
    """The fake runtime with a per-node profiler, as ONNX Runtime's: one node per kernel named after
    its last op, a made-up layout node before the head, and a fixed profiler cost on every node."""

    name = "fake-nodes"
    PROFILER_MS = 0.001

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,  # type: ignore[no-untyped-def]
                   warmup: int = 10):
        from edgetune.runners import NodeTime

        graph, _ = graph_from_onnx(artifact)
        nodes = []
        for kernel in split_kernels(graph, FAKE_RULES):
            op = kernel.head
            cost = 0.002 + op.macs * 2e-8 + (op.in_elems + kernel.tail.out_elems) * 1e-7 + self.PROFILER_MS
            if op.kind == "gap":
                nodes.append(NodeTime("ReorderOutput", "ReorderOutput", self.PROFILER_MS, self.PROFILER_MS))
            nodes.append(NodeTime(kernel.tail.name, "Conv" if op.kind in ("conv", "dwconv") else op.kind, cost, cost))
        return nodes


def fake_kernel_ms(kernel) -> float:  # type: ignore[no-untyped-def]
    op = kernel.head
    return 0.002 + op.macs * 2e-8 + (op.in_elems + kernel.tail.out_elems) * 1e-7


class ScaledFakeRunner(FakeRunner):
    """The fake runtime on "another machine": each kernel group (``_adapt.GROUPS``, "call" for the per-call
    cost) a known multiple slower or faster, and everything ``uniform`` times slower (drift)."""

    name = "fake-scaled"

    def __init__(self, multiples: Mapping[str, float], uniform: float = 1.0) -> None:
        super().__init__()
        self.multiples, self.uniform = dict(multiples), uniform

    def load(self, artifact: Path, threads: int) -> Session:
        from edgetune.predict._adapt import group_of

        self.loads += 1
        graph, _ = graph_from_onnx(artifact)
        total = CALL_MS * self.multiples.get("call", 1.0) + sum(
            self.multiples.get(group_of(k.kind), 1.0) * fake_kernel_ms(k) for k in split_kernels(graph, FAKE_RULES))
        return FakeSession(total * self.uniform, self)


class ExactFakePredictor(Predictor):
    """A perfect profile of the fake runtime: every kernel's and the call's exact cost."""

    name = "exact-fake"

    def predict_many(self, graphs):  # type: ignore[no-untyped-def]
        from edgetune.predict import KernelEstimate, LatencyEstimate

        out = []
        for graph in graphs:
            parts = tuple(KernelEstimate(k.kind, k.ops, fake_kernel_ms(k), k.head.macs) for k in split_kernels(graph, FAKE_RULES))
            total = CALL_MS + sum(p.latency_ms for p in parts)
            out.append(LatencyEstimate(graph.name, total, total, total, self.name, parts))
        return out


class ScaledFakeNodeRunner(ScaledFakeRunner):
    """``ScaledFakeRunner`` with a per-node profiler: one node per kernel at its scaled cost, as
    ``FakeNodeRunner`` (the end-to-end latency also carries the per-call cost)."""

    name = "fake-scaled-nodes"

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,  # type: ignore[no-untyped-def]
                   warmup: int = 10):
        from edgetune.predict._adapt import group_of
        from edgetune.runners import NodeTime

        graph, _ = graph_from_onnx(artifact)
        nodes = []
        for kernel in split_kernels(graph, FAKE_RULES):
            cost = self.multiples.get(group_of(kernel.kind), 1.0) * fake_kernel_ms(kernel) * self.uniform
            nodes.append(NodeTime(kernel.tail.name, "Conv" if kernel.head.kind in ("conv", "dwconv") else kernel.head.kind, cost, cost))
        return nodes
