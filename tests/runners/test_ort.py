"""ONNX Runtime on a GPU target: the CUDA provider, the one-line error where it is missing, and the gpu run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import ConfigError, RunnerError
from edgetune.runners import device_for, get_runner, runnability, runner_for
from edgetune.targets import Target, load_target

ort = pytest.importorskip("onnxruntime")
HAS_CUDA_EP = "CUDAExecutionProvider" in ort.get_available_providers()


def _local_gpu_target() -> Target:
    return Target.model_validate({"schema_version": 1, "name": "local-gpu", "kind": "gpu", "transport": "local",
                                  "runtimes": ["onnxruntime", "tvm"], "gpu": {"arch": "sm_80"}})


def _feeds(seed: int) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(seed).standard_normal((1, 1, 8, 8)).astype(np.float32)}


def test_gpu_targets_run_onnxruntime_on_cuda_and_other_runtimes_say_they_cannot() -> None:
    target = _local_gpu_target()
    assert device_for(target) == "cuda" and device_for(load_target("host-cpu")) == "cpu"
    runner = runner_for("onnxruntime", target)
    assert runner.device == "cuda"  # type: ignore[attr-defined]
    assert runner.versions()["onnxruntime_provider"] == "CUDAExecutionProvider"
    assert "onnxruntime_provider" not in get_runner("onnxruntime").versions()  # CPU fingerprints unchanged
    with pytest.raises(ConfigError) as info:
        runner_for("tvm", target)
    assert "\n" not in str(info.value) and "tvm has no cuda path" in str(info.value)


@pytest.mark.skipif(HAS_CUDA_EP, reason="this ONNX Runtime has the CUDA provider")
def test_missing_cuda_provider_is_a_one_line_error_not_a_cpu_fallback(tiny_onnx: Path) -> None:
    with pytest.raises(RunnerError) as info:
        get_runner("onnxruntime", "cuda").load(tiny_onnx, 1)
    message = str(info.value)
    assert "\n" not in message and "no CUDAExecutionProvider" in message and "onnxruntime-gpu" in message
    verdict = runnability(_local_gpu_target())
    assert not verdict.runnable and "CUDAExecutionProvider" in verdict.reason


@pytest.mark.gpu
def test_cuda_provider_runs_the_model_like_the_cpu(tiny_onnx: Path) -> None:
    if not HAS_CUDA_EP:
        pytest.skip("this ONNX Runtime has no CUDAExecutionProvider (install onnxruntime-gpu)")
    try:
        gpu = get_runner("onnxruntime", "cuda").load(tiny_onnx, 1)
    except RunnerError as exc:  # the provider is built in but no GPU or CUDA library is usable
        pytest.skip(str(exc))
    with gpu, get_runner("onnxruntime").load(tiny_onnx, 1) as cpu:
        assert gpu._session.get_providers()[0] == "CUDAExecutionProvider"  # type: ignore[attr-defined]
        for seed in range(3):
            np.testing.assert_allclose(gpu.run(_feeds(seed))[0], cpu.run(_feeds(seed))[0], rtol=1e-3, atol=1e-4)
