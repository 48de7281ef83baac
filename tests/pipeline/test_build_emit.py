"""`compile --build-only` (nothing reaches the target) and `compile --emit c` (firmware sources, compiled with g++)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgetune import compile_model
from edgetune.bench import BenchConfig, ResultsStore
from edgetune.errors import ConfigError, TargetNotRunnableError
from edgetune.lowering import lowering_registry
from edgetune.pipeline import CompileOptions
from edgetune.pipeline._emit_c import ARENA_MARGIN, ARENA_MARGIN_MIN_BYTES, _camel
from edgetune.pipeline._output import SUFFIX

QUICK = BenchConfig(warmup_runs=2, warmup_s=0.0, min_repeats=5, budget_s=0.2)
CALIB = CompileOptions(calib="digits", calib_samples=16)


def test_every_artifact_format_has_a_file_extension() -> None:
    formats = {cls.output_format for cls in lowering_registry.values()}
    assert formats <= set(SUFFIX), formats - set(SUFFIX)
    assert SUFFIX["tflm-tflite"] == ".tflite"


def test_build_only_reaches_no_board(tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     isolated_results: Path) -> None:
    monkeypatch.delenv("EDGETUNE_RPC_TRACKER", raising=False)
    with pytest.raises(TargetNotRunnableError):  # measuring needs a tracker...
        compile_model(tiny_onnx, "rpi4", tmp_path / "measured", runtimes=["onnxruntime"], config=QUICK)
    out = tmp_path / "out"  # ...building does not
    result = compile_model(tiny_onnx, "rpi4", out, runtimes=["onnxruntime"], build_only=True, options=CALIB)
    assert not result.measured and result.winner is None
    assert {r.status for r in result.evaluation.results} == {"built"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["measured"] is False and manifest["winner"] is None
    assert "not measured" in manifest["no_winner_reason"]
    assert all(c["status"] == "built" and c["latency"] is None and "not measured" in c["reason"]
               for c in manifest["candidates"])
    for name, path in manifest["built_artifacts"].items():
        assert (out / path).is_file() and path.endswith(".onnx"), name
    assert "not measured" in (out / "summary.txt").read_text()
    assert "nothing was measured" in (out / "report.html").read_text()
    with ResultsStore(isolated_results) as store:
        assert not list(store.runs())  # nothing measured, nothing stored


def test_build_only_cannot_search_a_prune_ratio(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot go with --build-only"):
        compile_model(tiny_onnx, "rpi4", tmp_path / "out", build_only=True,
                      options=CompileOptions(prune_to_latency_ms=1.0))


def test_emit_c_is_for_mcu_and_ethos_u_targets(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--emit c writes TensorFlow Lite Micro sources .* 'host-cpu' runs"):
        compile_model(tiny_onnx, "host-cpu", tmp_path / "out", emit="c")
    with pytest.raises(ConfigError, match="unknown --emit format 'rust'"):
        compile_model(tiny_onnx, "mcu-stm32f746", tmp_path / "out", emit="rust")


def test_resolver_method_names() -> None:
    assert [_camel(op) for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "ethos-u")] == \
        ["Conv2D", "DepthwiseConv2D", "FullyConnected", "MaxPool2D", "EthosU"]


MAIN_CC = r"""
#include <cstdint>
#include <cstdio>
#include "model_data.h"
static_assert(kTensorArenaSize % 16 == 0, "arena size is a multiple of 16");
int main() {
  bool aligned = reinterpret_cast<std::uintptr_t>(g_model_data) % 16 == 0;
  bool tflite = g_model_data[4] == 'T' && g_model_data[5] == 'F' && g_model_data[6] == 'L' && g_model_data[7] == '3';
  std::printf("%u %zu %d %d\n", g_model_data_len, kTensorArenaSize, aligned ? 1 : 0, tflite ? 1 : 0);
  return 0;
}
"""


def _compile_and_run(folder: Path) -> list[int]:
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no host C++ compiler")
    (folder / "main.cc").write_text(MAIN_CC)
    binary = folder / "check"
    subprocess.run([compiler, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I", str(folder), str(folder / "main.cc"),
                    str(folder / "model_data.cc"), "-o", str(binary)], check=True, capture_output=True, text=True)
    return [int(v) for v in subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.split()]


@pytest.mark.parametrize("build_only", [False, True])
def test_emit_c_for_an_mcu_compiles_with_the_host_compiler(tiny_onnx: Path, tmp_path: Path, build_only: bool) -> None:
    out = tmp_path / "out"
    result = compile_model(tiny_onnx, "mcu-stm32f746", out, config=QUICK, options=CALIB, emit="c",
                           build_only=build_only)
    emitted = result.emitted
    assert emitted and emitted["written"] and emitted["candidate"] == "tflm-int8"
    arena = result.evaluation.results[0].details["arena_bytes"]
    assert emitted["arena_measured_bytes"] == arena
    margin = max(int(arena * ARENA_MARGIN), ARENA_MARGIN_MIN_BYTES)
    assert arena + margin <= emitted["tensor_arena_size"] < arena + margin + 16
    header = (out / "model_data.h").read_text()
    assert f"kTensorArenaSize = {emitted['tensor_arena_size']}" in header and "MicroInterpreter" in header
    assert "resolver.Add" in header and "margin" in header
    length, arena_size, aligned, tflite = _compile_and_run(out)
    tflite_file = next((out / "artifacts").glob("*.tflite")) if build_only else out / "tiny.tflite"
    assert length == tflite_file.stat().st_size == emitted["model_bytes"]
    assert arena_size == emitted["tensor_arena_size"] and aligned == 1 and tflite == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["emitted"]["header"] == "model_data.h"
    figures = manifest["candidates"][0]["device_figures"]
    assert figures["label"] == "ESTIMATED" and figures["values"]["arena_kb"] == pytest.approx(arena / 1024)
    assert figures["values"]["sram_kb"] == 320 and "arena" in figures["text"]
    assert "ESTIMATED: arena" in (out / "summary.txt").read_text()
    assert "ESTIMATED: arena" in (out / "report.html").read_text()


def test_emit_c_for_ethos_u_writes_the_vela_model(tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = compile_model(tiny_onnx, "ethos-u55-128", out, config=QUICK, options=CALIB, emit="c")
    emitted = result.emitted
    assert emitted["candidate"] == "vela-int8" and "Vela SRAM plan" in emitted["arena_source"]
    assert "resolver.AddEthosU();" in (out / "model_data.h").read_text()
    length, _, aligned, _ = _compile_and_run(out)
    assert length == (out / "tiny_vela.tflite").stat().st_size and aligned == 1
    figures = json.loads((out / "manifest.json").read_text())["candidates"][0]["device_figures"]
    assert figures["label"] == "SIMULATED" and figures["kind"] == "ethos-u" and figures["values"]["npu_ops"] > 0
