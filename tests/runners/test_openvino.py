"""OpenVINO runner specifics beyond the conformance suite: compile settings, input binding, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import RunnerError
from edgetune.lowering import LoweringContext, get_lowering
from edgetune.models import load_model
from edgetune.runners import get_runner
from edgetune.targets import load_target


@pytest.fixture(scope="module")
def tiny_ir(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("ov")
    model = load_model(tiny_onnx, workdir=workdir)
    return get_lowering("openvino").apply(model, load_target("host-cpu"), workdir, LoweringContext()).path


@pytest.fixture(scope="module")
def two_input_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = a - 2*b: swapping the inputs changes the answer, so binding mistakes show."""
    import onnx
    import openvino as ov
    from onnx import TensorProto, helper, numpy_helper

    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["b", "two"], ["b2"]), helper.make_node("Sub", ["a", "b2"], ["y"])],
        "sub_net",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [two],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    folder = tmp_path_factory.mktemp("ov2")
    onnx.save(proto, str(folder / "sub.onnx"))
    ov.save_model(ov.convert_model(str(folder / "sub.onnx")), str(folder / "sub.xml"), compress_to_fp16=False)
    return folder / "sub.xml"


@pytest.mark.parametrize("threads", [1, 2])
def test_compiles_for_latency_with_the_threads_given(tiny_ir: Path, threads: int) -> None:
    import openvino as ov

    with get_runner("openvino").load(tiny_ir, threads=threads) as session:
        compiled = session.compiled_model  # type: ignore[attr-defined]
        # OpenVINO caps the threads at the cores this thread may run on (an earlier test may have pinned it)
        assert compiled.get_property("INFERENCE_NUM_THREADS") == min(threads, len(os.sched_getaffinity(0)))
        assert compiled.get_property("NUM_STREAMS") == 1
        assert str(compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"
        # fp32 stays fp32 even where the CPU plugin would default to bf16
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32


def test_binds_inputs_by_name_then_by_position(two_input_ir: Path) -> None:
    a, b = np.full((1, 4), 10.0, np.float32), np.ones((1, 4), np.float32)
    with get_runner("openvino").load(two_input_ir, threads=1) as session:
        np.testing.assert_allclose(session.run({"b": b, "a": a})[0], a - 2 * b)  # by name, any order
        np.testing.assert_allclose(session.run({"x0": a, "x1": b})[0], a - 2 * b)  # unknown names: position


def test_outputs_are_copies(two_input_ir: Path) -> None:
    with get_runner("openvino").load(two_input_ir, threads=1) as session:
        first = session.run({"a": np.ones((1, 4), np.float32), "b": np.zeros((1, 4), np.float32)})[0]
        session.run({"a": np.zeros((1, 4), np.float32), "b": np.ones((1, 4), np.float32)})
        np.testing.assert_array_equal(first, np.ones((1, 4), np.float32))


def test_missing_weights_file_is_a_one_line_runner_error(tiny_ir: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "lonely.xml"
    lonely.write_bytes(tiny_ir.read_bytes())  # no .bin beside it
    with pytest.raises(RunnerError, match="lonely.xml") as info:
        get_runner("openvino").load(lonely, threads=1)
    assert "\n" not in str(info.value) and "Exception from" not in str(info.value)


def test_versions_name_openvino() -> None:
    assert get_runner("openvino").versions()["openvino"].startswith("20")


def test_performance_counters_give_each_executed_node(tiny_ir: Path) -> None:
    feeds = {"input": np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)}
    nodes = get_runner("openvino").node_times(tiny_ir, 1, feeds, runs=5, warmup=1)
    assert nodes and all(n.latency_ms >= n.min_ms >= 0 for n in nodes)
    assert any(n.op_type.startswith("Convolution") for n in nodes)


def test_counters_of_several_runs_keep_the_faster_half() -> None:
    from edgetune.runners._openvino import node_times_from_runs

    runs = [[("conv", "Convolution/jit", 1.0), ("fc", "FullyConnected", 0.2)],
            [("conv", "Convolution/jit", 3.0), ("fc", "FullyConnected", 0.1)]]
    nodes = node_times_from_runs(runs)
    assert [(n.name, n.latency_ms, n.min_ms) for n in nodes] == [("conv", 1.0, 1.0), ("fc", 0.1, 0.1)]
