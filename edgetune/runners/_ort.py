"""ONNX Runtime on the CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgetune.errors import RunnerError
from edgetune.runners._base import Runner, Session


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
    """ONNX Runtime, CPU EP, all graph optimizations, intra-op threads pinned to the count given."""

    name = "onnxruntime"
    artifact_format = "onnx"
    modules = ("onnxruntime",)
    extra = "all"

    def load(self, artifact: Path, threads: int) -> Session:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RunnerError(f"ONNX Runtime cannot load '{artifact.name}': {str(exc).splitlines()[0][:300]}") from None
        return OrtSession(session)

    def versions(self) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}
