"""OpenVINO Runtime on its CPU plugin, reading OpenVINO IR (.xml with its .bin beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edgetune.errors import RunnerError, one_line
from edgetune.runners._base import NodeTime, Runner, Session

# Lines OpenVINO prefixes to every error (source locations, check macros): not for users.
_BOILERPLATE = ("Exception from ", "Check '", "FrontEnd API failed")


def openvino_error_line(exc: BaseException) -> str:
    """The first informative line of an OpenVINO exception message, at most 300 characters."""
    return one_line(exc, skip=_BOILERPLATE)


class OpenVinoSession(Session):
    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._inputs = list(compiled.inputs)
        self._index_by_name = {name: i for i, port in enumerate(self._inputs) for name in port.get_names()}
        self._n_outputs = len(compiled.outputs)

    @property
    def compiled_model(self) -> Any:
        """The underlying openvino.CompiledModel, for inspecting properties and the runtime graph."""
        return self._compiled

    def set_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        import openvino as ov

        for position, (name, value) in enumerate(feeds.items()):
            index = self._index_by_name.get(name, position)
            dtype = self._inputs[index].get_element_type().to_dtype()
            # ov.Tensor copies the array (shared_memory=False): callers may reuse their buffers
            self._request.set_input_tensor(index, ov.Tensor(np.ascontiguousarray(value, dtype=dtype)))

    def invoke(self) -> None:
        # share_outputs: no copy inside the timed call; outputs() copies
        self._request.infer(share_outputs=True)

    def outputs(self) -> list[np.ndarray]:
        return [np.array(self._request.get_output_tensor(i).data, copy=True) for i in range(self._n_outputs)]

    def close(self) -> None:
        self._request = None
        self._compiled = None


class OpenVinoRunner(Runner):
    """OpenVINO CPU plugin: latency hint, one stream, ``threads`` inference threads, fp32 arithmetic.

    The CPU plugin runs fp32 models in bf16 by default on CPUs with AVX512-BF16/AMX; the precision
    hint pins fp32 so results match the model's declared precision (int8 IRs keep their int8 ops).
    """

    name = "openvino"
    artifact_format = "openvino"
    modules = ("openvino",)
    extra = "openvino"

    def _compile(self, artifact: Path, threads: int, counters: bool = False) -> Any:
        import openvino as ov

        config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if counters:
            config["PERF_COUNT"] = True
        try:
            return ov.Core().compile_model(str(artifact), "CPU", config)
        except Exception as exc:
            raise RunnerError(f"OpenVINO cannot load '{artifact.name}': {openvino_error_line(exc)}") from None

    def load(self, artifact: Path, threads: int) -> Session:
        return OpenVinoSession(self._compile(artifact, threads))

    def node_times(self, artifact: Path, threads: int, feeds: Mapping[str, np.ndarray], runs: int = 40,
                   warmup: int = 10) -> Optional[list[NodeTime]]:
        """OpenVINO's per-layer performance counters (``PERF_COUNT``): each executed node of the compiled
        graph, its real time per inference, in execution order."""
        session = OpenVinoSession(self._compile(artifact, threads, counters=True))
        try:
            session.set_inputs(feeds)
            per_run = []
            for run in range(warmup + runs):
                session.invoke()
                if run >= warmup:
                    per_run.append(_executed(session._request.get_profiling_info()))
        finally:
            session.close()
        return node_times_from_runs(per_run)

    def versions(self) -> dict[str, str]:
        import openvino as ov

        return {"openvino": ov.get_version()}


def _executed(infos: Sequence[Any]) -> list[tuple[str, str, float]]:
    """(node, type[/kernel], ms) of the nodes one inference executed (OPTIMIZED_OUT and NOT_RUN dropped)."""
    out = []
    for info in infos:
        if str(info.status).rsplit(".", 1)[-1] != "EXECUTED":
            continue
        kind = f"{info.node_type}/{info.exec_type}" if info.exec_type else str(info.node_type)
        out.append((str(info.node_name), kind, info.real_time.total_seconds() * 1e3))
    return out


def node_times_from_runs(per_run: Sequence[Sequence[tuple[str, str, float]]]) -> list[NodeTime]:
    """Per-run (node, type, ms) lists -> one NodeTime per node in first-run order: the mean of the faster half
    of its runs (as for ONNX Runtime: counters tick in microseconds, interference only adds time)."""
    samples: dict[str, list[float]] = {}
    kinds: dict[str, str] = {}
    for run in per_run:
        for name, kind, ms in run:
            samples.setdefault(name, []).append(ms)
            kinds.setdefault(name, kind)
    out = []
    for name, values in samples.items():
        kept = sorted(values)
        out.append(NodeTime(name, kinds[name], float(np.mean(kept[: max(1, len(kept) // 2)])), kept[0]))
    return out
