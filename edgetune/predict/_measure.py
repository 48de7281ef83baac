"""Measure graphs on a target: export to ONNX, lower for the runtime (fp32), time with the harness.

Used by the profiler (single kernels), by the MeasuringPredictor (whole networks, when no
profile exists) and by the predictor benchmark (the ground truth).
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from edgetune.bench import BenchConfig
from edgetune.errors import ConfigError, EdgetuneError, RunnerError, reraise_as
from edgetune.predict._graph import Graph, to_onnx
from edgetune.runners._base import Runner
from edgetune.targets import Target

# Kernels take microseconds: short budgets, a 2% CI bound, at least 30 samples per kernel.
KERNEL_CONFIG = BenchConfig(warmup_runs=10, warmup_s=0.05, min_repeats=30, budget_s=0.4, ci_rel=0.02)
NETWORK_CONFIG = BenchConfig(warmup_runs=10, warmup_s=0.1, min_repeats=30, budget_s=1.5, ci_rel=0.01)


@dataclass(frozen=True)
class GraphTiming:
    """A measured latency of one graph (median of the harness samples)."""

    name: str
    median_ms: float
    ci_low_ms: float
    ci_high_ms: float
    samples: int
    converged: bool
    reference_ms: Optional[float] = None  # the reference graph's median in the same interleaved group
    p10_ms: float = 0.0
    min_ms: float = 0.0
    error: str = ""  # why this graph could not be built or run here (then the numbers are 0)
    nodes: tuple[tuple[str, str, float, float], ...] = ()  # (name, operator, ms, fastest ms) from the runtime's profiler

    @property
    def latency_ms(self) -> float:
        """The latency the predictor learns and is judged on: the fastest of the repeated runs.

        On a shared machine interference only ever adds time, so the minimum is the estimate that
        reproduces (Chen & Revels, "Robust benchmarking in noisy environments", 2016); on this
        2-vCPU VM two measurements of a network agree within 10% far more often by minimum than by median.
        """
        return self.min_ms or self.median_ms

    def normalized_ms(self, reference_ms: Optional[float]) -> float:
        """``latency_ms`` rescaled to the machine speed at which the reference graph takes ``reference_ms``.

        This VM's speed drifts 10-30% over minutes; the reference graph, timed interleaved with
        every group, tracks it, so profile and later measurements compare at one speed.
        """
        if not reference_ms or not self.reference_ms:
            return self.latency_ms
        return self.latency_ms * reference_ms / self.reference_ms


def reference_graph() -> Graph:
    """A small fixed network timed beside every group: it tracks how fast the machine is right now."""
    from edgetune.predict._graph import GraphBuilder

    b = GraphBuilder("reference", (1, 16, 28, 28))
    x = b.relu(b.bn(b.conv("input", 32, 3, 1)))
    x = b.relu(b.bn(b.dwconv(x, 3, 1)))
    return b.build(b.bn(b.conv(x, 32, 1, 1)))


def _plain_plan(target: Target, runtime: str):  # type: ignore[no-untyped-def]
    """The plain build of ``runtime``: fp32 where the target runs it, else its first precision
    (int8 on simulated NPUs); never pruned or tuned."""
    from edgetune.pipeline import plans_for

    if runtime not in target.runtimes:
        raise ConfigError(f"target '{target.name}' does not list runtime '{runtime}'; its runtimes are: {', '.join(target.runtimes)}")
    plans = [p for p in plans_for(target, [runtime]) if "prune" not in p.lowerings
             and not any(name.endswith(("tuned", "qat")) for name in p.lowerings)]
    plans.sort(key=lambda p: p.precision != "fp32")
    if not plans or plans[0].lowerings[0] not in ("onnx", "tvm", "openvino", "ort-int8-static"):
        raise ConfigError(f"runtime '{runtime}' on target '{target.name}' has no build from ONNX the profiler can use; "
                          "profile a runtime that runs ONNX models (onnxruntime, tvm, openvino, scalesim)")
    return plans[0]


def _random_calibration(graph: Graph):  # type: ignore[no-untyped-def]
    """Random calibration inputs for int8 builds: the latency of a kernel does not depend on its scales."""
    from edgetune.lowering import CalibrationData

    x = np.random.default_rng(0).standard_normal((8, *graph.input_shape[1:])).astype(np.float32)
    return CalibrationData(x, "random (latency profiling)", is_random=True)


class GraphMeasurer:
    """Builds and times graphs for one target/runtime at fp32, a few sessions interleaved at a time.

    An rpc target's boards are reached through ``rpc_tracker`` (HOST:PORT, default $EDGETUNE_RPC_TRACKER);
    their connections serve one group of sessions after another until ``close``.
    """

    def __init__(self, target: Target, runtime: str, threads: Optional[int] = None,
                 config: BenchConfig = KERNEL_CONFIG, workdir: Optional[Path] = None, interleave: int = 4,
                 runner: Optional["Runner"] = None, reference: Optional[Graph] = None,
                 rpc_tracker: Optional[str] = None) -> None:
        self.target = target
        self.runtime = runtime
        self.threads = threads or target.thread_count
        self.config = config
        self.interleave = max(1, interleave)
        self.reference = reference
        self.plan = None if runner is not None else _plain_plan(target, runtime)
        if runner is None:
            from edgetune.bench import isolated
            from edgetune.runners import runner_for

            runner = runner_for(runtime, target, rpc_tracker)
            available = type(runner).availability()
            if not available.ok:
                raise RunnerError(f"runtime {runtime}: {available.reason}")
            runner = isolated(runner)  # each graph timed alone in a worker process, as a deployed model runs
        else:
            available = type(runner).availability()
            if not available.ok:
                raise RunnerError(f"runtime {runtime}: {available.reason}")
        self.runner = runner
        self._kept = ExitStack()  # what the runner keeps between sessions (board connections), released on close
        self._kept.enter_context(runner.reusing())
        self._built = 0
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="edgetune-measure-"))

    def versions(self) -> dict[str, str]:
        return self.runner.versions()

    @contextmanager
    def timing_with(self, config: BenchConfig, interleave: int, reference: Optional[Graph] = None) -> Iterator[None]:
        """Other harness settings for a while (the same runner and build folder): e.g. the reference networks
        timed as a deployed network is, at the end of a profile whose kernels were timed in shorter sessions."""
        saved = (self.config, self.interleave, self.reference)
        self.config, self.interleave, self.reference = config, max(1, interleave), reference
        try:
            yield
        finally:
            self.config, self.interleave, self.reference = saved

    def _artifact(self, graph: Graph, folder: Path) -> Path:
        from edgetune.lowering import LoweringContext
        from edgetune.models import load_model
        from edgetune.pipeline import build_artifact

        onnx_path = to_onnx(graph, folder / f"{graph.name}.onnx")
        if self.runner.artifact_format == "onnx" or self.plan is None:  # the runtime takes the ONNX file as it is
            return onnx_path
        loaded = load_model(onnx_path, workdir=folder)
        context = LoweringContext(calibration=_random_calibration(graph), options={"calib_samples": 8})
        with reraise_as(RunnerError, f"cannot build {graph.name} for {self.runtime}", 200):  # one graph's lowering failed
            artifact = build_artifact(self.plan, loaded, self.target, folder / "build", context, {})
        return artifact.path

    def measure(self, graphs: Sequence[Graph], nodes: bool = False) -> tuple[list[GraphTiming], bool]:
        """Time each graph; returns (timings, interrupted).

        Groups of ``interleave`` sessions (plus the reference graph, when set) are timed in
        alternating blocks. On Ctrl-C the groups finished so far are returned with
        ``interrupted`` True, so the caller can store them before stopping. With ``nodes`` (and a
        runtime that has a per-node profiler) each artifact is also run through that profiler,
        from the same build.
        """
        results: list[GraphTiming] = []
        for start in range(0, len(graphs), self.interleave):
            group = list(graphs[start:start + self.interleave])
            if self.reference is not None:
                group.append(self.reference)
            try:
                timings, errors, profiled = self._time_group(group, nodes)
            except KeyboardInterrupt:
                return results, True
            if any(t.interrupted for t in timings.values()) or len(timings) + len(errors) < len(group):
                return results, True
            results += self._group_results(group, timings, errors, profiled)
        return results, False

    def _time_group(self, group: list[Graph], nodes: bool) -> tuple[dict[str, Any], dict[str, str], dict[str, tuple]]:
        """Build, load and time one group interleaved: (timings, why a graph could not run, node times), by
        "index:name". The sessions are closed and the builds removed on every path."""
        from edgetune.bench import measure_interleaved, random_inputs
        from edgetune.models import TensorSpec

        sessions: dict[str, Any] = {}
        feeds, errors, artifacts = {}, {}, {}
        profiled: dict[str, tuple] = {}
        try:
            self._built += 1  # a fresh folder per group: dlopen() hands back a library already loaded from the same path
            for index, graph in enumerate(group):
                key = f"{index}:{graph.name}"
                folder = self.workdir / f"b{self._built}" / f"g{index}"
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    artifacts[key] = self._artifact(graph, folder)
                    sessions[key] = self.runner.load(artifacts[key], self.threads)
                except EdgetuneError as exc:  # e.g. a simulator that only costs conv/FC layers
                    errors[key] = str(exc)
                    continue
                spec = TensorSpec("input", tuple(graph.input_shape), "float32")
                feeds[key] = random_inputs([spec], seed=index)[0]
            timings = measure_interleaved(sessions, feeds, self.config) if sessions else {}
            if nodes and self.profiles_nodes:
                profiled = self._node_times([k for k in sessions if not k.endswith(":reference")], artifacts, feeds)
        finally:
            for session in sessions.values():
                session.close()
            shutil.rmtree(self.workdir / f"b{self._built}", ignore_errors=True)
        return timings, errors, profiled

    def _node_times(self, keys: list[str], artifacts: dict[str, Path], feeds: dict[str, Any]) -> dict[str, tuple]:
        """Each artifact run through the runtime's per-node profiler, from the same build."""
        profiled = {}
        for key in keys:
            try:
                found = self.runner.node_times(artifacts[key], self.threads, feeds[key])
            except EdgetuneError:  # the end-to-end timing still counts; the network just lacks node times
                found = None
            profiled[key] = tuple((n.name, n.op_type, n.latency_ms, n.min_ms) for n in found or ())
        return profiled

    def _group_results(self, group: list[Graph], timings: dict[str, Any], errors: dict[str, str],
                       profiled: dict[str, tuple]) -> list[GraphTiming]:
        """One GraphTiming per graph of the group (the reference graph's time goes into each, not the list)."""
        ordered = [timings.get(f"{index}:{graph.name}") for index, graph in enumerate(group)]
        last = ordered.pop() if self.reference is not None else None
        ref = last.stats.min_ms if last is not None else None
        results = []
        for index, (graph, timing) in enumerate(zip(group, ordered)):
            if timing is None:
                results.append(GraphTiming(graph.name, 0.0, 0.0, 0.0, 0, False, ref, error=errors[f"{index}:{graph.name}"]))
                continue
            stats = timing.stats
            results.append(GraphTiming(graph.name, stats.median_ms, stats.ci_low_ms, stats.ci_high_ms,
                                       len(timing.samples_ms), timing.converged, ref,
                                       float(np.percentile(timing.samples_ms, 10)), stats.min_ms,
                                       nodes=profiled.get(f"{index}:{graph.name}", ())))
        return results

    @property
    def profiles_nodes(self) -> bool:
        """Whether the runtime reports per-node times inside a network (``Runner.node_times``)."""
        return self.runner.profiles_nodes

    def close(self) -> None:
        self._kept.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "GraphMeasurer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
