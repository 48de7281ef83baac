"""Cross-compilation: arm64 boards get real aarch64 shared objects, GPU targets carry CUDA code."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tvm")

from edgetune.lowering import LoweringContext  # noqa: E402
from edgetune.lowering._tvm import TvmLowering, cross_compiler  # noqa: E402
from edgetune.models import load_model  # noqa: E402
from edgetune.targets import Target, load_target  # noqa: E402

EM_AARCH64 = 183
needs_toolchain = pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-g++") is None,
    reason="aarch64-linux-gnu-g++ not installed (apt-get install g++-aarch64-linux-gnu; tools/setup-system.sh)",
)


def elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


@pytest.fixture(scope="module")
def model(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory):
    return load_model(tiny_onnx, workdir=tmp_path_factory.mktemp("model"))


@needs_toolchain
@pytest.mark.parametrize("name, mcpu", [("rpi4", "cortex-a72"), ("jetson-orin-nano", "cortex-a78ae")])
def test_arm64_boards_get_aarch64_shared_objects(name: str, mcpu: str, model, tmp_path: Path) -> None:
    artifact = TvmLowering().apply(model, load_target(name), tmp_path, LoweringContext())
    assert elf_machine(artifact.path) == EM_AARCH64
    assert artifact.details["cross_compiler"] == "aarch64-linux-gnu-g++"
    assert f'"mcpu":"{mcpu}"' in artifact.details["tvm_target"] and "aarch64-linux-gnu" in artifact.details["tvm_target"]


def test_missing_cross_toolchain_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgetune.errors import MissingDependencyError

    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(MissingDependencyError, match="g\\+\\+-aarch64-linux-gnu"):
        cross_compiler(load_target("rpi4"))


def _gpu_target(arch: str) -> Target:
    return Target(schema_version=1, name="test-gpu", kind="gpu", runtimes=("tvm",), gpu={"arch": arch})  # type: ignore[arg-type]


def test_cuda_target_compiles_without_a_gpu(model, tmp_path: Path) -> None:
    artifact = TvmLowering().apply(model, _gpu_target("sm_87"), tmp_path, LoweringContext())
    blob = artifact.path.read_bytes()
    assert '"kind":"cuda"' in artifact.details["tvm_target"] and '"arch":"sm_87"' in artifact.details["tvm_target"]
    assert b"__global__" in blob  # the CUDA kernels travel inside the library (compiled at load by NVRTC/nvcc)


@needs_toolchain
def test_jetson_artifact_carries_cuda_kernels(model, tmp_path: Path) -> None:
    artifact = TvmLowering().apply(model, load_target("jetson-orin-nano"), tmp_path, LoweringContext())
    assert elf_machine(artifact.path) == EM_AARCH64 and b"__global__" in artifact.path.read_bytes()


@pytest.mark.gpu
def test_cuda_artifact_runs_on_a_gpu(model, tmp_path: Path, tiny_module) -> None:
    import tvm
    from tvm import relax

    if not tvm.cuda().exist:
        pytest.skip("no CUDA GPU here")
    artifact = TvmLowering().apply(model, _gpu_target("sm_" + tvm.cuda().compute_version.replace(".", "")), tmp_path,
                                   LoweringContext())
    device = tvm.cuda()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.path)), device)
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    out = vm["main"](tvm.runtime.tensor(x, device))
    out = out if hasattr(out, "numpy") else out[0]
    import torch

    with torch.no_grad():
        expected = tiny_module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-3, atol=1e-4)
