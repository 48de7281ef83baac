"""ONNX Runtime on its CPU execution provider, or on its CUDA provider for an NVIDIA GPU."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from edgetune.errors import RunnerError, reraise_as
from edgetune.runners._base import NodeTime, Runner, Session

ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}  # per Runner device


class OrtSession(Session):
    def __init__(self, session: Any) -> None:
        self._session = session
        self._feeds: dict[str, np.ndarray] = {}
        self._outputs: list[np.ndarray] = []

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        self._feeds = dict(feeds)

    def invoke(self) -> None:
        self._outputs = self._session.run(None, self._feeds)

    def outputs(self) -> list[np.ndarray]:
        return [np.asarray(o) for o in self._outputs]

    def close(self) -> None:
        # dropping the session stops its intra-op thread pool, whose spinning workers would
        # otherwise steal CPU from whatever is measured next
        self._session = None
        self._outputs = []


class OrtRunner(Runner):
    """ONNX Runtime, all graph optimizations, intra-op threads pinned to the count given; CPU EP, or the
    CUDA EP on ``device="cuda"`` (never a silent fall-back to the CPU: a session that did not get the
    CUDA provider is an error)."""

    name = "onnxruntime"
    artifact_format = "onnx"
    modules = ("onnxruntime",)
    extra = "all"
    devices = ("cpu", "cuda")

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.provider = ORT_PROVIDERS[device]

    def _session(self, artifact: Path, threads: int, profile_prefix: Optional[str] = None) -> Any:
        import onnxruntime as ort

        missing = provider_missing(self.provider)
        if missing:
            raise RunnerError(missing)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        # the CPU provider stays listed after CUDA: nodes CUDA has no kernel for run there, as ONNX Runtime intends
        providers = list(dict.fromkeys([self.provider, ORT_PROVIDERS["cpu"]]))
        with reraise_as(RunnerError, f"ONNX Runtime cannot load '{artifact.name}'"):
            session = ort.InferenceSession(str(artifact), options, providers=providers)
        started = session.get_providers()
        if not started or started[0] != self.provider:  # e.g. CUDA/cuDNN libraries missing: ORT logs and goes on on the CPU
            raise RunnerError(f"ONNX Runtime did not start its {self.provider} for '{artifact.name}' (the session runs on "
                              f"{', '.join(started) or 'nothing'}): check that the CUDA and cuDNN libraries onnxruntime-gpu "
                              "needs are installed and a GPU is visible")
        return session

    def load(self, artifact: Path, threads: int) -> Session:
        return OrtSession(self._session(artifact, threads))

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,
                   warmup: int = 10) -> Optional[list[NodeTime]]:
        """ONNX Runtime's own profiler (``enable_profiling``): each node's kernel time inside the optimized graph."""
        with tempfile.TemporaryDirectory(prefix="edgetune-ortprof-") as tmp:
            session = self._session(artifact, threads, profile_prefix=str(Path(tmp) / "profile"))
            for _ in range(warmup + runs):
                session.run(None, dict(feeds))
            events = json.loads(Path(session.end_profiling()).read_text())
        return parse_node_events(events, warmup)

    def versions(self) -> dict[str, str]:
        """ONNX Runtime's version, and the provider when it is not the CPU one (CPU fingerprints stay as they were)."""
        import onnxruntime

        found = {"onnxruntime": onnxruntime.__version__}
        if self.device != "cpu":
            found["onnxruntime_provider"] = self.provider
        return found


def provider_missing(provider: str) -> Optional[str]:
    """Why this ONNX Runtime cannot use ``provider``, or None when it can."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider in available:
        return None
    return (f"ONNX Runtime {ort.__version__} here has no {provider} (its providers: {', '.join(available)}); "
            "install onnxruntime-gpu (in place of onnxruntime) on the machine with the NVIDIA GPU")


def parse_node_events(events: list[dict], warmup: int) -> list[NodeTime]:
    """ONNX Runtime profile events -> one NodeTime per node, in execution order, warm-up runs dropped.

    The profiler ticks in whole microseconds and small kernels take a few: the mean of the faster
    half of the runs keeps sub-microsecond resolution while ignoring runs slowed by interference.
    """
    samples: dict[str, list[float]] = {}
    op_types: dict[str, str] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        samples.setdefault(node, []).append(float(event.get("dur", 0.0)) / 1000.0)
        op_types.setdefault(node, str(event.get("args", {}).get("op_name", "")))
    out = []
    for node, values in samples.items():  # dicts keep first-seen order: the execution order
        kept = sorted(values[warmup:] or values)
        out.append(NodeTime(node, op_types[node], float(np.mean(kept[: max(1, len(kept) // 2)])), kept[0]))
    return out
