"""LiteRT (ai-edge-litert) interpreter with its default XNNPACK delegate."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgetune._quiet import quiet_fds
from edgetune.errors import RunnerError, reraise_as
from edgetune.runners._base import Runner, Session


class LiteRtSession(Session):
    def __init__(self, interpreter: Any) -> None:
        self._interp = interpreter
        self._inputs = interpreter.get_input_details()
        self._outputs = interpreter.get_output_details()

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        # LiteRT names inputs after the converter's signature; bind by position.
        for detail, value in zip(self._inputs, feeds.values()):
            self._interp.set_tensor(detail["index"], _quantize(np.asarray(value), detail))

    def invoke(self) -> None:
        self._interp.invoke()

    def close(self) -> None:
        self._interp = None

    def outputs(self) -> list[np.ndarray]:
        return [_dequantize(np.array(self._interp.get_tensor(d["index"])), d) for d in self._outputs]


def _quantize(value: np.ndarray, detail: dict) -> np.ndarray:
    """Float data into a full-integer model's int8/uint8 input (what a sensor pipeline would feed)."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(dtype, np.integer) and scale and np.issubdtype(value.dtype, np.floating):
        info = np.iinfo(dtype)
        value = np.clip(np.round(value / scale) + zero_point, info.min, info.max)
    return np.ascontiguousarray(value, dtype=dtype)


def _dequantize(value: np.ndarray, detail: dict) -> np.ndarray:
    """A full-integer model's int8/uint8 output back to float, so it compares with fp32 references."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(value.dtype, np.integer) and scale:
        return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return value


class LiteRtRunner(Runner):
    """LiteRT interpreter, XNNPACK delegate, ``num_threads`` pinned."""

    name = "litert"
    artifact_format = "tflite"
    modules = ("ai_edge_litert",)
    extra = "litert"
    # Why node_times stays None (checked on ai-edge-litert 2.3.0): the Python Interpreter and its
    # InterpreterWrapper expose no profiler (their methods: AllocateTensors, Invoke, NodeName, ... no
    # profiling call), and only the C++ benchmark_model tool reads per-op timings.
    no_node_times = ("LiteRT's Python interpreter (ai-edge-litert) exposes no per-operator timings; "
                     "use LiteRT's benchmark_model tool with --enable_op_profiling")

    def load(self, artifact: Path, threads: int) -> Session:
        from ai_edge_litert.interpreter import Interpreter

        with reraise_as(RunnerError, f"LiteRT cannot load '{artifact.name}'"):
            with quiet_fds():  # "INFO: Created TensorFlow Lite XNNPACK delegate" on every load
                interpreter = Interpreter(model_path=str(artifact), num_threads=threads)
                interpreter.allocate_tensors()
        return LiteRtSession(interpreter)

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"ai-edge-litert": version("ai-edge-litert")}
