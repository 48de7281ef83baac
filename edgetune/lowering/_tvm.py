"""Build an ONNX model with Apache TVM Relax for an LLVM CPU target into a shared library."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from edgetune.errors import RunnerError, UnsupportedOperatorError
from edgetune.lowering._base import Artifact, Lowering, LoweringContext
from edgetune.models import LoadedModel
from edgetune.targets import Target

_UNSUPPORTED_RE = re.compile(r"operators? (?:are|is) not supported[^:]*:\s*\{?([^}\n]+)", re.IGNORECASE)


def llvm_target(target: Target) -> Any:
    """The TVM LLVM target for ``target``: host CPU name when 'auto', given triple when cross-compiling."""
    import tvm
    from tvm.target import codegen

    mcpu = target.cpu.llvm_mcpu
    if mcpu == "auto":
        mcpu = codegen.llvm_get_system_cpu()
    spec: dict[str, Any] = {"kind": "llvm", "mcpu": mcpu, "num-cores": target.thread_count}
    if target.cpu.llvm_mtriple != "auto":
        spec["mtriple"] = target.cpu.llvm_mtriple
    return tvm.target.Target(spec)


def import_onnx(model: LoadedModel) -> Any:
    """Import the model's ONNX form into a Relax module ready for inference passes."""
    import onnx
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    proto = onnx.load(str(model.onnx_path))
    shapes = {spec.name: list(spec.shape) for spec in model.inputs}
    try:
        mod = from_onnx(proto, shape_dict=shapes, keep_params_in_input=False)
    except Exception as exc:
        text = str(exc)
        found = _UNSUPPORTED_RE.search(text)
        if found or "not supported" in text.lower() or isinstance(exc, NotImplementedError):
            ops = found.group(1).strip() if found else text.splitlines()[0][:200]
            raise UnsupportedOperatorError(f"TVM's ONNX frontend cannot lower operator(s) {ops}") from None
        raise RunnerError(f"TVM cannot import the model: {text.splitlines()[0][:300] if text else type(exc).__name__}") from None
    return relax.transform.DecomposeOpsForInference()(mod)


class TvmLowering(Lowering):
    """ONNX -> Relax -> tvm.compile(llvm, -mcpu) -> export_library(.so)."""

    name = "tvm"
    input_format = "onnx"
    output_format = "tvm-lib"
    modules = ("tvm",)
    extra = "tvm"

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        import tvm

        start = time.perf_counter()
        mod = import_onnx(model)
        tvm_target = llvm_target(target)
        try:
            with tvm.transform.PassContext(opt_level=3):
                executable = tvm.compile(mod, target=tvm_target)
        except Exception as exc:
            raise RunnerError(f"TVM build failed: {str(exc).splitlines()[0][:300]}") from None
        out = workdir / f"{model.name}.tvm.so"
        executable.export_library(str(out))
        return Artifact(out, "tvm-lib", time.perf_counter() - start, {"tvm_target": str(tvm_target)})
