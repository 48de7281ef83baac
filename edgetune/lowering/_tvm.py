"""Build an ONNX model with Apache TVM Relax for an LLVM CPU target into a shared library.

Boards of another architecture (e.g. aarch64) get the target's triple and -mcpu and are linked
with the cross toolchain; NVIDIA GPU targets get TVM's CUDA target with the CPU as host.
"""

from __future__ import annotations

import platform
import re
import shutil
import time
from pathlib import Path
from typing import Any

from edgetune.errors import MissingDependencyError, RunnerError, UnsupportedOperatorError, one_line
from edgetune.lowering._base import Artifact, Lowering, LoweringContext, Variant
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
    if target.cpu.llvm_mattr:
        spec["mattr"] = list(target.cpu.llvm_mattr)
    return tvm.target.Target(spec)


def tvm_target(target: Target) -> Any:
    """What TVM builds for: CUDA (the GPU's arch) hosted by the CPU for an NVIDIA GPU target, else the CPU."""
    import tvm

    host = llvm_target(target)
    if target.kind == "gpu" and target.gpu is not None and target.gpu.vendor == "nvidia":
        return tvm.target.Target({"kind": "cuda", "arch": target.gpu.arch}, host=host)
    return host


def cross_compiler(target: Target) -> Any:
    """TVM's fcompile linking for ``target``'s triple when it is another architecture, else None."""
    triple = target.cpu.llvm_mtriple
    if triple == "auto":
        return None
    machine = platform.machine().lower().replace("arm64", "aarch64").replace("amd64", "x86_64")
    if triple.split("-")[0] == machine:
        return None
    compiler = f"{triple}-g++"
    if shutil.which(compiler) is None:
        raise MissingDependencyError(
            f"cross-compiling for {triple} (target '{target.name}') needs {compiler}: on Debian/Ubuntu "
            f"apt-get install g++-{triple} (bash tools/setup-system.sh as root installs it)"
        )
    from tvm.support import cc

    return cc.cross_compiler(compiler)


def export_library(executable: Any, out: Path, target: Target) -> dict[str, str]:
    """Write ``executable`` as a shared library loadable on ``target``; returns details for the Artifact."""
    fcompile = cross_compiler(target)
    if fcompile is None:
        executable.export_library(str(out))
        return {}
    executable.export_library(str(out), fcompile=fcompile)
    return {"cross_compiler": f"{target.cpu.llvm_mtriple}-g++"}


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
            ops = found.group(1).strip() if found else one_line(exc, 200)
            raise UnsupportedOperatorError(f"TVM's ONNX frontend cannot lower operator(s) {ops}") from None
        raise RunnerError(f"TVM cannot import the model: {one_line(exc)}") from None
    return relax.transform.DecomposeOpsForInference()(mod)


class TvmLowering(Lowering):
    """ONNX -> Relax -> tvm.compile(llvm, -mcpu) -> export_library(.so)."""

    name = "tvm"
    input_format = "onnx"
    output_format = "tvm-lib"
    modules = ("tvm",)
    extra = "tvm"
    variants = (Variant("tvm", "fp32"),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        import tvm

        start = time.perf_counter()
        mod = import_onnx(model)
        build_target = tvm_target(target)
        try:
            with tvm.transform.PassContext(opt_level=3):
                executable = tvm.compile(mod, target=build_target)
        except Exception as exc:
            raise RunnerError(f"TVM build failed: {one_line(exc)}") from None
        out = workdir / f"{model.name}.tvm.so"
        details = export_library(executable, out, target)
        return Artifact(out, "tvm-lib", time.perf_counter() - start, {"tvm_target": str(build_target), **details})
