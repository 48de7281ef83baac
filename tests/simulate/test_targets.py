"""Simulated targets end to end: runnable and labelled, `edgetune compile`/`bench` on them, infeasible designs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetune import compile_model
from edgetune.pipeline import CompileOptions
from edgetune.pipeline._candidates import plans_for
from edgetune.pipeline._run import NoViableCandidateError
from edgetune.runners import runnability
from edgetune.targets import list_targets, load_target
from edgetune.targets._schema import OverlaySpec
from tests.cli.test_cli import edgetune

SIMULATED = ("ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u65-512",
             "npu-edgetpu-like", "npu-eyeriss-like", "fpga-zynq7020", "fpga-zu9eg", "mcu-stm32f746", "mcu-nrf52840")


def test_simulated_targets_are_runnable_labelled_and_have_plans() -> None:
    targets = {t.name: t for t in list_targets()}
    for name in SIMULATED:
        target = targets[name]
        verdict = runnability(target)
        assert target.simulated and target.transport == "sim"
        assert verdict.runnable and verdict.reason.startswith("simulated with"), (name, verdict.reason)
        plans = plans_for(target)
        assert plans and {p.runtime for p in plans} == set(target.runtimes) and {p.precision for p in plans} == {"int8"}


def test_cli_compile_for_ethos_u55(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = edgetune("compile", "tests.conftest:tiny_factory", "--input-shape", "1x1x8x8", "--target", "ethos-u55-128",
                    "--calib", "digits", "--budget-s", "0.3", "-o", str(out), "--results", str(tmp_path / "r.sqlite"),
                    env={"EDGETUNE_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert "SIMULATED" in proc.stdout and "winner: vela-int8" in proc.stdout
    assert (out / "tiny_factory_vela.tflite").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"]["simulated"] is True
    winner = next(c for c in manifest["candidates"] if c["name"] == "vela-int8")
    build = winner["build_details"]
    assert build["simulated"] is True and build["simulator"] == "vela" and build["cycles_total"] > 0
    assert winner["latency"]["median_ms"] == pytest.approx(build["latency_ms"])


def test_cli_bench_on_an_fpga_overlay(tmp_path: Path) -> None:
    proc = edgetune("bench", "tests.conftest:tiny_factory", "--input-shape", "1x1x8x8", "--target", "fpga-zynq7020",
                    "--precision", "int8", "--calib", "digits", "--budget-s", "0.3", "--json",
                    "--results", str(tmp_path / "r.sqlite"), env={"EDGETUNE_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["simulated"] is True
    candidate = data["candidates"][0]
    assert candidate["status"] == "ok" and candidate["build_details"]["array"] == "14x14 ws"
    assert candidate["latency"]["median_ms"] == pytest.approx(candidate["build_details"]["latency_ms"])


def test_compile_reports_an_overlay_that_does_not_fit(tmp_path: Path) -> None:
    from tests.conftest import tiny_factory

    target = load_target("fpga-zynq7020")
    too_big = target.model_copy(update={"fpga": target.fpga.model_copy(
        update={"overlay": OverlaySpec(array_rows=32, array_cols=32)})})
    with pytest.raises(NoViableCandidateError):
        compile_model(tiny_factory(), too_big, output_dir=tmp_path / "out", input_shape=(1, 1, 8, 8),
                      options=CompileOptions(calib="digits", budget_s=0.3))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (candidate,) = manifest["candidates"]
    assert candidate["status"] == "failed"
    assert "overlay does not fit fpga-zynq7020" in candidate["reason"] and "needs 1024 DSP slices" in candidate["reason"]


@pytest.mark.parametrize("name", SIMULATED)
def test_every_simulated_target_benches_a_tiny_model(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`edgetune bench` works unchanged on each simulated device: an estimate, labelled, or a clear does-not-fit."""
    from edgetune import benchmark
    from edgetune.bench import BenchConfig
    from tests.conftest import tiny_factory

    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    evaluation = benchmark(tiny_factory(), name, input_shape=(1, 1, 8, 8), config=BenchConfig(budget_s=0.2),
                           options=CompileOptions(calib="digits"))
    assert evaluation.target.simulated
    for result in evaluation.results:
        assert result.plan.precision == "int8"
        if result.status == "ok":
            assert result.details.get("simulated") is True and result.timing.stats.median_ms > 0
        else:  # only a clear infeasible result is acceptable for a tiny model
            assert result.status == "failed" and "does not fit" in result.reason, result.reason
    assert any(r.status == "ok" for r in evaluation.results), [r.reason for r in evaluation.results]
