"""Systolic arrays and FPGA overlays through SCALE-Sim: topology, simulation, energy, fit checks, cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import InfeasibleError, RunnerError
from edgetune.lowering import LoweringContext, get_lowering
from edgetune.models import load_model
from edgetune.runners import get_runner
from edgetune.simulate._fpga import resource_problems, size_overlay
from edgetune.simulate._scalesim import EXAMPLE_ARRAY, run_scalesim
from edgetune.simulate._scalesim_worker import main as worker_main
from edgetune.simulate._topology import ArrayLayer, systolic_layers
from edgetune.targets import load_target
from edgetune.targets._schema import MemorySpec, OverlaySpec


def _three_layer_net():
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),  # depthwise
        nn.Flatten(), nn.Linear(8 * 8 * 8, 10),
    ).eval()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory):
    return load_model(_three_layer_net(), input_shape=(1, 3, 16, 16), workdir=tmp_path_factory.mktemp("net"))


@pytest.fixture(scope="module")
def simulated(net, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGETUNE_CACHE", str(cache))
        artifact = get_lowering("scalesim").apply(net, load_target("npu-eyeriss-like"), tmp_path_factory.mktemp("sim"),
                                                  LoweringContext())
    return artifact, cache


def test_onnx_lowers_to_conv_depthwise_and_fc_rows(net) -> None:
    network = systolic_layers(net.onnx_path)
    assert [layer.kind for layer in network.layers] == ["conv", "depthwise", "fc"]
    conv, depthwise, fc = network.layers
    assert conv.shape == ArrayLayer(18, 18, 3, 3, 3, 8, 2) and conv.repeat == 1  # padding folded into the ifmap
    assert depthwise.shape == ArrayLayer(10, 10, 3, 3, 1, 1, 1) and depthwise.repeat == 8  # one row per channel
    assert fc.shape == ArrayLayer(1, 1, 1, 1, 512, 10, 1)
    assert conv.macs == 8 * 8 * 3 * 3 * 3 * 8 and depthwise.macs == 8 * 8 * 9 * 8 and fc.macs == 5120
    assert network.skipped.get("Relu") == 2


def test_scalesim_simulates_the_net_on_the_eyeriss_like_array(simulated) -> None:
    artifact, _ = simulated
    d = artifact.details
    assert d["simulated"] is True and d["simulator"] == "scalesim" and d["simulator_version"] == "3.0.0"
    assert d["array"] == "12x14 ws" and d["clock_mhz"] == 200
    assert d["cycles_incl_prefetch"] >= d["cycles"] > 0
    assert d["latency_ms"] == pytest.approx(d["cycles"] / 200e3)
    assert 0 < d["utilization_pct"] <= 100 and d["macs"] == 13824 + 4608 + 5120
    assert d["sram_read_bytes"] > 0 and d["dram_read_bytes"] > 0 and d["dram_write_bytes"] > 0
    assert [layer["kind"] for layer in d["per_layer"]] == ["conv", "depthwise", "fc"]
    assert sum(layer["cycles"] for layer in d["per_layer"]) == d["cycles"]
    parts = d["energy_breakdown_uj"]
    assert d["energy_uj"] == pytest.approx(parts["mac"] + parts["sram"] + parts["dram"]) and parts["dram"] > 0
    assert "Horowitz" in d["energy_source"] and d["cache"] == "miss" and d["layers_from_cache"] == 0


def test_outputs_come_from_the_onnx_graph_and_timing_from_scalesim(simulated, net) -> None:
    artifact, _ = simulated
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    with get_runner("onnxruntime").load(net.onnx_path, threads=1) as reference:
        expected = reference.run({"input": x})[0]
    with get_runner("scalesim").load(artifact.path, threads=1) as session:
        np.testing.assert_allclose(session.run({"input": x})[0], expected, rtol=1e-5, atol=1e-6)
        assert session.device_timed(2) == [artifact.details["latency_ms"]] * 2


def test_second_simulation_is_a_cache_hit(simulated, net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, cache = simulated
    monkeypatch.setenv("EDGETUNE_CACHE", str(cache))
    second = get_lowering("scalesim").apply(net, load_target("npu-eyeriss-like"), tmp_path, LoweringContext())
    assert second.details["cache"] == "hit" and second.details["cycles"] == first.details["cycles"]


def test_layers_an_earlier_network_simulated_come_from_the_layer_cache(simulated, net, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the network's own entry (another network, other weights) no layer is simulated again."""
    first, cache = simulated
    shutil.copytree(cache, tmp_path / "cache")
    shutil.rmtree(tmp_path / "cache" / "simulations")
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))

    def no_simulation(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("SCALE-Sim ran for a cached layer")

    monkeypatch.setattr("edgetune.simulate._scalesim.run_scalesim", no_simulation)
    second = get_lowering("scalesim").apply(net, load_target("npu-eyeriss-like"), tmp_path / "sim", LoweringContext())
    assert second.details["cache"] == "miss" and second.details["layers_from_cache"] == 3
    assert second.details["cycles"] == first.details["cycles"] and second.details["per_layer"] == first.details["per_layer"]


def test_node_times_are_the_simulated_array_layers(simulated) -> None:
    """The predictor's in-network costs for a simulated array: each layer's cycles at the clock, by ONNX node name."""
    artifact, _ = simulated
    nodes = get_runner("scalesim").node_times(artifact.path, 1, {})
    assert nodes is not None and [n.op_type for n in nodes] == ["Conv", "Conv", "Gemm"]
    assert [n.name for n in nodes] == [layer["node"] for layer in artifact.details["per_layer"]]
    assert sum(n.latency_ms for n in nodes) == pytest.approx(artifact.details["latency_ms"])
    assert all(n.min_ms == n.latency_ms > 0 for n in nodes)


def test_overlay_is_sized_from_the_parts_budgets() -> None:
    zynq = load_target("fpga-zynq7020").fpga
    design = size_overlay(zynq)
    assert (design.rows, design.cols) == (14, 14) and design.dsp_used <= zynq.dsp_slices
    assert design.bram_used_kb <= zynq.bram_kb and resource_problems(design, zynq) == []
    big = load_target("fpga-zu9eg").fpga
    assert size_overlay(big).rows > design.rows


def test_an_overlay_that_does_not_fit_the_part_is_infeasible(net, tmp_path: Path) -> None:
    target = load_target("fpga-zynq7020")
    fixed = target.fpga.model_copy(update={"overlay": OverlaySpec(array_rows=32, array_cols=32, sram_kb=1024)})
    too_big = target.model_copy(update={"fpga": fixed})
    with pytest.raises(InfeasibleError) as info:
        get_lowering("scalesim").apply(net, too_big, tmp_path, LoweringContext())
    message = str(info.value)
    assert "needs 1024 DSP slices" in message and "xc7z020 has 220" in message
    assert "1024 KB of block RAM, xc7z020 has 630 KB" in message


def test_a_board_without_the_bandwidth_is_infeasible(net, tmp_path: Path) -> None:
    target = load_target("fpga-zynq7020")
    starved = target.model_copy(update={"memory": MemorySpec(ram_mb=512, bandwidth_gbps=0.001)})
    with pytest.raises(InfeasibleError, match=r"needs [\d.]+ GB/s of DRAM bandwidth at 150 MHz, the board provides 0.001 GB/s"):
        get_lowering("scalesim").apply(net, starved, tmp_path, LoweringContext())


def test_worker_validates_its_inputs_before_scalesim_can_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert worker_main([str(tmp_path / "missing.cfg"), "t.csv", "l.csv", str(tmp_path)]) == 2
    assert "missing input file" in capsys.readouterr().err


def test_a_failing_simulation_is_a_runner_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edgetune.simulate._scalesim.WORKER", tmp_path / "no-such-worker.py")
    with pytest.raises(RunnerError, match="SCALE-Sim failed"):
        run_scalesim([ArrayLayer(4, 4, 1, 1, 1, 1, 1)], EXAMPLE_ARRAY, tmp_path)


@pytest.mark.slow
def test_cross_check_with_scalesims_own_golden_result(tmp_path: Path) -> None:
    """AlexNet Conv1 on SCALE-Sim's example 32x32 ws array: its repository's golden report says 112,283 cycles."""
    row = run_scalesim([ArrayLayer(224, 224, 11, 11, 3, 96, 4)], EXAMPLE_ARRAY, tmp_path)[0]
    assert row["cycles"] == 112283 and row["mapping_efficiency_pct"] == pytest.approx(94.53125)


def test_padding_dilation_and_non_square_kernels_fold_into_the_rows(tmp_path: Path) -> None:
    from tests.models._onnx_models import WINDOW_MACS, windows_onnx

    network = systolic_layers(windows_onnx(tmp_path))
    rows = {layer.node: layer.shape for layer in network.layers}
    assert rows["k1x7"] == ArrayLayer(20, 26, 1, 7, 8, 16, 1) and rows["k7x1"] == ArrayLayer(26, 20, 7, 1, 16, 16, 1)
    assert rows["dilated"] == ArrayLayer(24, 24, 5, 5, 16, 16, 1)  # a dilated 3x3 covers 5x5 of the padded map
    assert rows["valid"] == ArrayLayer(20, 20, 3, 3, 16, 16, 1) and rows["same_upper"] == ArrayLayer(19, 19, 3, 3, 16, 16, 2)
    assert rows["fc"] == ArrayLayer(1, 1, 1, 1, 256, 10, 1) and network.skipped == {"Flatten": 1, "MaxPool": 1}
    assert all(layer.macs == WINDOW_MACS[layer.node] for layer in network.layers if layer.node != "dilated")
