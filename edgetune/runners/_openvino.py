"""OpenVINO Runtime on its CPU plugin, reading OpenVINO IR (.xml with its .bin beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgetune.errors import RunnerError
from edgetune.runners._base import Runner, Session

# Lines OpenVINO prefixes to every error (source locations, check macros): not for users.
_BOILERPLATE = ("Exception from ", "Check '", "FrontEnd API failed")


def openvino_error_line(exc: BaseException) -> str:
    """The first informative line of an OpenVINO exception message, at most 300 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_BOILERPLATE)]
    return (useful or lines or [type(exc).__name__])[0][:300]


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

    def load(self, artifact: Path, threads: int) -> Session:
        import openvino as ov

        config = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": "f32",
        }
        try:
            compiled = ov.Core().compile_model(str(artifact), "CPU", config)
        except Exception as exc:
            raise RunnerError(f"OpenVINO cannot load '{artifact.name}': {openvino_error_line(exc)}") from None
        return OpenVinoSession(compiled)

    def versions(self) -> dict[str, str]:
        import openvino as ov

        return {"openvino": ov.get_version()}
