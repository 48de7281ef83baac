"""Ethos-U through Vela: a tiny int8 model compiled for ethos-u55-128, its numbers, outputs, cache and fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import InfeasibleError, RunnerError
from edgetune.lowering import CalibrationData, LoweringContext, get_lowering
from edgetune.models import load_model
from edgetune.runners import get_runner
from edgetune.simulate import read_estimate
from edgetune.simulate._vela import parse_vela_output
from edgetune.targets import load_target
from edgetune.targets._schema import MemorySpec


def _digits_context() -> LoweringContext:
    from edgetune.data import load_dataset

    return LoweringContext(calibration=CalibrationData(load_dataset("digits").x[:32], "digits"))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory):
    """The tiny CNN quantized (PT2E int8) and compiled by Vela for ethos-u55-128, with its own cache."""
    from tests.conftest import tiny_factory

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGETUNE_CACHE", str(cache))
        model = load_model(tiny_factory(), input_shape=(1, 1, 8, 8), workdir=tmp_path_factory.mktemp("model"))
        artifact = get_lowering("vela").apply(model, load_target("ethos-u55-128"), tmp_path_factory.mktemp("vela"),
                                              _digits_context())
    return model, artifact, cache


def test_vela_numbers_are_parsed(compiled) -> None:
    _, artifact, _ = compiled
    details = artifact.details
    assert artifact.format == "vela-tflite" and artifact.path.name.endswith("_vela.tflite")
    assert details["simulated"] is True and details["simulator"] == "vela" and details["simulator_version"] == "5.2.0"
    assert details["accelerator_config"] == "Ethos_U55_128" and details["memory_mode"] == "Shared_Sram"
    assert details["cycles_total"] >= details["cycles_npu"] > 0 and details["nn_macs"] > 0
    assert details["latency_ms"] == pytest.approx(details["cycles_total"] / 500e3)  # 500 MHz in the YAML
    assert details["sram_used_kb"] > 0 and details["off_chip_flash_used_kb"] > 0
    assert details["npu_ops"] > 0 and details["cpu_ops"] == 0 and details["cpu_fallback_ops"] == []
    assert details["per_layer"] and all(int(layer["Op Cycles"]) >= 0 for layer in details["per_layer"])
    assert details["cache"] == "miss"


def test_session_outputs_are_the_int8_models_and_timing_is_velas(compiled) -> None:
    model, artifact, _ = compiled
    estimate = read_estimate(artifact.path)
    x = np.random.default_rng(0).uniform(0, 16, (1, 1, 8, 8)).astype(np.float32)
    with get_runner("litert").load(artifact.path.with_name(estimate.functional_model), threads=1) as direct:
        expected = direct.run({"input": x})[0]
    with get_runner("vela").load(artifact.path, threads=1) as session:
        out = session.run({"input": x})[0]
        assert session.device_timed(3) == [estimate.latency_ms] * 3
        other = session.run({"input": x[:, :, ::-1].copy()})[0]
    np.testing.assert_array_equal(out, expected)
    assert out.shape == (1, 3) and not np.array_equal(out, other)


def test_second_compile_is_a_cache_hit(compiled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, first, cache = compiled
    monkeypatch.setenv("EDGETUNE_CACHE", str(cache))
    second = get_lowering("vela").apply(model, load_target("ethos-u55-128"), tmp_path, _digits_context())
    assert second.details["cache"] == "hit"
    assert second.details["cycles_total"] == first.details["cycles_total"]
    assert second.path.read_bytes() == first.path.read_bytes()
    assert any((cache / "simulations" / "vela").iterdir())


def test_a_model_larger_than_the_sram_does_not_fit(compiled, tmp_path: Path) -> None:
    model, _, _ = compiled
    small = load_target("ethos-u55-128").model_copy(update={"memory": MemorySpec(sram_kb=0, flash_kb=8192)})
    with pytest.raises(InfeasibleError, match=r"needs [\d.]+ KB SRAM, the target has 0 KB"):
        get_lowering("vela").apply(model, small, tmp_path, _digits_context())


def test_float_operators_fall_back_to_the_cpu_with_an_estimate(compiled, tmp_path: Path) -> None:
    model, _, _ = compiled
    artifact = get_lowering("vela").apply(model, load_target("ethos-u55-128"), tmp_path, LoweringContext())
    details = artifact.details
    assert details["npu_ops"] == 0 and details["cpu_ops"] > 0 and details["cpu_fallback_ops"]
    assert details["cpu_fallback"]["macs"] > 0 and details["latency_ms"] == pytest.approx(details["cpu_fallback"]["latency_ms"])
    assert "float32" in details["input"]


def test_missing_vela_output_is_a_runner_error(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match="summary CSV"):
        parse_vela_output(tmp_path, "model", "")


def test_artifact_without_its_estimate_is_refused(compiled, tmp_path: Path) -> None:
    _, artifact, _ = compiled
    lone = tmp_path / artifact.path.name
    lone.write_bytes(artifact.path.read_bytes())
    with pytest.raises(RunnerError, match="no simulator estimate"):
        get_runner("vela").load(lone, threads=1)


def test_vela_per_layer_figures_are_the_npu_layers_at_the_npu_clock(compiled) -> None:
    _model, artifact, _cache = compiled
    nodes = get_runner("vela").node_times(artifact.path, 1, {})
    details = read_estimate(artifact.path).details
    assert nodes and sum(n.latency_ms for n in nodes) <= details["npu_latency_ms"] * 1.001 + 1e-9


def test_vela_layers_add_a_cpu_fallback_row() -> None:
    from edgetune.runners._vela import vela_layers

    details = {"npu_clock_mhz": 500.0, "per_layer": [
        {"Name": "conv", "Original Operator": "CONV_2D", "NNG Operator": "Conv2DBias", "Target": "NPU", "Op Cycles": "1000"},
        {"Name": "sm", "Original Operator": "SOFTMAX", "NNG Operator": "Softmax", "Target": "CPU", "Op Cycles": "0"}],
        "cpu_fallback": {"latency_ms": 0.5, "core": "cortex-m55"}}
    nodes = vela_layers(details)
    assert [(n.name, n.latency_ms) for n in nodes] == [("conv", pytest.approx(0.002)), ("cpu-fallback", 0.5)]
    assert vela_layers({"per_layer": []}) is None


def test_a_relative_work_folder_works(compiled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `edgetune compile ... -o out` builds under a relative folder; Vela runs in its output folder
    model, _, _ = compiled
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "fresh-cache"))  # a real Vela run, not a cache hit
    Path("work").mkdir()
    artifact = get_lowering("vela").apply(model, load_target("ethos-u55-128"), Path("work"), _digits_context())
    assert artifact.details["cache"] == "miss" and artifact.path.is_file()
