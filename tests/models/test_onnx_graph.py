"""The one ONNX reader: windows per axis, shapes, MACs; the summary agrees with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.errors import ModelError
from edgetune.models._onnx_graph import Window, read_onnx_graph
from edgetune.models._summary import summarize_onnx
from tests.models._onnx_models import WINDOW_MACS, windows_onnx


def test_windows_keep_every_axis_pads_and_dilation(tmp_path: Path) -> None:
    graph = read_onnx_graph(windows_onnx(tmp_path))
    nodes = {node.name: node for node in graph.nodes}
    assert nodes["k1x7"].window == Window(kernel=(1, 7), strides=(1, 1), pads=(0, 3, 0, 3), dilations=(1, 1))
    assert nodes["k7x1"].window is not None and nodes["k7x1"].window.kernel == (7, 1)
    dilated = nodes["dilated"].window
    assert dilated is not None and dilated.extent == (5, 5) and dilated.padded((20, 20)) == (24, 24)
    valid = nodes["valid"].window
    assert valid is not None and valid.pads == (0, 0, 0, 0) and valid.padded((20, 20)) == (20, 20)
    same = nodes["same_upper"].window
    assert same is not None and same.auto_pad == "SAME_UPPER" and same.strides == (2, 2)
    assert same.resolved_pads((18, 18)) == (0, 0, 1, 1) and same.padded((18, 18)) == (19, 19)
    pool = nodes["pool"].window  # a pool's kernel comes from its attribute
    assert pool == Window(kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0), dilations=(1, 1))
    assert nodes["flat"].window is None and nodes["fc"].attr("transB") == 1


def test_shapes_and_macs_per_node(tmp_path: Path) -> None:
    graph = read_onnx_graph(windows_onnx(tmp_path))
    nodes = {node.name: node for node in graph.nodes}
    assert nodes["k1x7"].input_shapes == ((1, 8, 20, 20), (16, 8, 1, 7)) and nodes["k1x7"].output_shapes == ((1, 16, 20, 20),)
    assert nodes["valid"].output_shapes == ((1, 16, 18, 18),) and nodes["same_upper"].output_shapes == ((1, 16, 9, 9),)
    assert {n.name: n.macs for n in graph.nodes if n.macs} == WINDOW_MACS
    assert graph.macs == sum(WINDOW_MACS.values()) and nodes["pool"].macs == 0
    assert graph.params == 16 * 8 * 7 + 16 * 16 * 7 + 3 * 16 * 16 * 9 + 2560  # weights, no biases
    assert graph.inputs == ("x",) and graph.static_shape("x") == (1, 8, 20, 20) and graph.static_shape("missing") is None
    assert graph.op_counts() == {"Conv": 5, "Flatten": 1, "Gemm": 1, "MaxPool": 1}


def test_the_summary_is_the_readers(tmp_path: Path, tiny_onnx: Path) -> None:
    for path in (windows_onnx(tmp_path), tiny_onnx):
        graph = read_onnx_graph(path)
        assert summarize_onnx(path) == (graph.op_counts(), graph.params, graph.macs)
    assert summarize_onnx(tiny_onnx)[2] == 4 * 8 * 8 * 9 + 4 * 3


def test_a_file_that_does_not_load_is_a_one_line_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"cannot read ONNX model .*bad.onnx for SCALE-Sim: .*check the file") as info:
        read_onnx_graph(bad, check=True, purpose="for SCALE-Sim")
    assert "\n" not in str(info.value)
