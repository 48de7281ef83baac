from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetune.errors import ConfigError, ModelError
from edgetune.predict import GraphBuilder, graph_from_onnx, to_onnx
from edgetune.predict._graph import graph_from_dict, graph_to_dict


def _residual_net():
    b = GraphBuilder("res", (1, 3, 32, 32))
    x = b.relu(b.bn(b.conv("input", 16, 3, 2)))
    y = b.relu6(b.bn(b.dwconv(x, 5, 1)))
    y = b.bn(b.conv(y, 16, 1))
    x = b.add(y, x)
    x = b.pool(x, "maxpool", 2, 2)
    return b.build(b.fc(b.gap(x), 10))


def test_builder_shapes_and_macs() -> None:
    g = _residual_net()
    conv = g.ops[0]
    assert (conv.cout, conv.hout, conv.wout) == (16, 16, 16)
    assert conv.macs == 16 * 16 * 16 * 3 * 3 * 3
    dw = next(op for op in g.ops if op.kind == "dwconv")
    assert dw.groups == 16 and dw.macs == 16 * 16 * 16 * 25
    assert g.ops[-1].kind == "fc" and g.ops[-1].macs == 16 * 10
    assert g.macs == sum(op.macs for op in g.ops)


def test_onnx_round_trip_keeps_ops_and_macs(tmp_path: Path) -> None:
    g = _residual_net()
    back, skipped = graph_from_onnx(to_onnx(g, tmp_path / "res.onnx"))
    assert not skipped
    kinds = [op.kind for op in back.ops if op.kind != "flatten"]
    assert kinds == [op.kind for op in g.ops if op.kind != "flatten"]
    assert back.macs == g.macs and back.input_shape == g.input_shape


def test_exported_onnx_runs_in_onnxruntime(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    path = to_onnx(_residual_net(), tmp_path / "res.onnx")
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": np.ones((1, 3, 32, 32), np.float32)})
    assert out[0].shape == (1, 10)


def test_torch_exported_model_is_read(tiny_onnx: Path) -> None:
    graph, skipped = graph_from_onnx(tiny_onnx)
    kinds = [op.kind for op in graph.ops]
    assert "conv" in kinds and "fc" in kinds and "gap" in kinds
    assert graph.macs == 4 * 8 * 8 * 9 + 4 * 3


def test_unknown_ops_become_estimated_other_ops(unsupported_op_onnx: Path) -> None:
    graph, estimated = graph_from_onnx(unsupported_op_onnx)
    assert [op.kind for op in graph.ops] == ["conv", "other"] and estimated and estimated[0].startswith("Celu")
    other = graph.ops[1]
    assert other.inputs == (graph.ops[0].name,) and other.in_elems == other.out_elems == 2 * 8 * 8


def test_corrupt_onnx_is_a_one_line_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot read ONNX model"):
        graph_from_onnx(bad)


def test_dynamic_input_is_refused(dynamic_onnx: Path) -> None:
    with pytest.raises(ModelError, match="fixed NCHW input shape"):
        graph_from_onnx(dynamic_onnx)


def test_dict_round_trip_and_bad_description() -> None:
    g = _residual_net()
    assert graph_from_dict(json.loads(json.dumps(graph_to_dict(g)))) == g
    with pytest.raises(ModelError, match="network description"):
        graph_from_dict({"name": "x"})


def test_builder_rejects_bad_shapes() -> None:
    with pytest.raises(ConfigError):
        GraphBuilder("bad", (2, 3, 8, 8))
    b = GraphBuilder("b", (1, 3, 8, 8))
    x = b.conv("input", 8, 3, 2)
    with pytest.raises(ConfigError, match="mismatched"):
        b.add(x, "input")
    with pytest.raises(ConfigError, match="unknown activation"):
        b.act(x, "gelu")
    with pytest.raises(ConfigError, match="resize to a positive size"):
        b.resize(x, 0)


def test_op_names_stay_unique() -> None:
    b = GraphBuilder("n", (1, 4, 8, 8))
    x = b.relu6("input")
    for _ in range(70):
        x = b.relu(x)
    names = [op.name for op in b.build().ops]
    assert len(set(names)) == len(names)  # "relu6" + "2" once clashed with "relu" + "62"


def test_resize_exports_runs_and_reads_back(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    b = GraphBuilder("resized", (1, 1, 8, 8))
    g = b.build(b.fc(b.gap(b.relu(b.conv(b.resize("input", 12), 8, 3))), 10))
    assert g.ops[0].kind == "resize" and (g.ops[0].hout, g.ops[0].wout) == (12, 12)
    assert g.ops[1].hin == 12  # what follows the resize sees the new size
    path = to_onnx(g, tmp_path / "resized.onnx")
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": np.ones((1, 1, 8, 8), np.float32)})
    assert out[0].shape == (1, 10)
    back, skipped = graph_from_onnx(path)
    assert not skipped and back.ops[0].kind == "resize" and (back.ops[0].hin, back.ops[0].hout) == (8, 12)


def test_torch_mean_over_space_reads_as_global_pool(tmp_path: Path) -> None:
    import torch

    from edgetune.models._load import export_module_to_onnx

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 1).flatten(1))

    path = tmp_path / "mean.onnx"
    export_module_to_onnx(Net().eval(), (1, 1, 8, 8), path, "test")  # the exporter writes ReduceMean over (2, 3)
    graph, skipped = graph_from_onnx(path)
    assert not [s for s in skipped if s.startswith("ReduceMean")]
    gap = next(op for op in graph.ops if op.kind == "gap")
    assert (gap.cin, gap.hin, gap.hout) == (4, 8, 1)


def _real_network_ops():
    """Every op kind real edge networks contain: grouped conv, shuffle, split, pad, squeeze-excite, softmax."""
    b = GraphBuilder("zoo", (1, 3, 32, 32))
    x = b.relu(b.bn(b.conv("input", 16, 3, 2)))
    x = b.conv(x, 32, 3, 1, groups=4)
    x = b.shuffle(x, 4)
    b.conv(b.pad(b.slice(x, 16), 1), 32, 3, 1)
    x = b.squeeze_excite(b.squeeze_excite(x, 4, "sigmoid"), 4, "hsigmoid")
    x = b.transpose(b.scale(b.mul(x, x)))
    return b.build(b.softmax(b.fc(b.gap(b.add(x, b.relu(x))), 10)))


def test_every_new_kind_round_trips_through_onnx(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    g = _real_network_ops()
    path = to_onnx(g, tmp_path / "zoo.onnx")
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": np.ones((1, 3, 32, 32), np.float32)})
    assert out[0].shape == (1, 10)
    back, estimated = graph_from_onnx(path)
    assert not estimated
    fields = ("kind", "cin", "cout", "hin", "hout", "kernel", "groups")
    assert [[getattr(op, f) for f in fields] for op in back.ops] == [[getattr(op, f) for f in fields] for op in g.ops]
    assert {"transpose", "slice", "pad", "scale", "mul", "hsigmoid", "softmax"} <= {op.kind for op in back.ops}
    assert back.macs == g.macs


def _onnx_model(tmp_path: Path, nodes, inits, out_shape, name: str = "m") -> Path:  # type: ignore[no-untyped-def]
    import onnx
    from onnx import TensorProto, helper

    model = helper.make_model(helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def test_no_ops_and_constant_subgraphs_are_free_and_never_listed(tmp_path: Path) -> None:
    import numpy as np
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.ones((8, 8, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Identity", ["w"], ["w2"]), helper.make_node("Identity", ["x"], ["xi"]),
             helper.make_node("Dropout", ["xi"], ["xd"]), helper.make_node("Conv", ["xd", "w2"], ["c"]),
             helper.make_node("Flatten", ["c"], ["f"]), helper.make_node("Relu", ["f"], ["y"])]
    graph, estimated = graph_from_onnx(_onnx_model(tmp_path, nodes, [w], [1, 128]))
    assert [op.kind for op in graph.ops] == ["conv", "relu"] and not estimated
    assert graph.ops[1].inputs == (graph.ops[0].name,)  # Identity/Dropout/Flatten in between: no kernel border


def test_matmul_bias_is_one_fc_and_broadcast_ops_are_scales(tmp_path: Path) -> None:
    import numpy as np
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(np.ones((128, 10), np.float32), "w"), numpy_helper.from_array(np.ones(10, np.float32), "b"),
             numpy_helper.from_array(np.full((1, 8, 1, 1), 2.0, np.float32), "k")]
    nodes = [helper.make_node("Div", ["x", "k"], ["d"]), helper.make_node("GlobalAveragePool", ["d"], ["g"]),
             helper.make_node("Sub", ["d", "g"], ["s"]), helper.make_node("Flatten", ["s"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    graph, estimated = graph_from_onnx(_onnx_model(tmp_path, nodes, inits, [1, 10]))
    assert [op.kind for op in graph.ops] == ["scale", "gap", "scale", "fc"] and not estimated
    fc = graph.ops[-1]
    assert (fc.cin, fc.cout, fc.macs) == (128, 10, 1280)
    assert len(graph.ops[2].inputs) == 2 and graph.ops[2].inputs[0] == graph.ops[0].name  # the full map first


def test_builder_rejects_bad_new_ops() -> None:
    b = GraphBuilder("b", (1, 6, 8, 4))
    with pytest.raises(ConfigError, match="groups >= 2 dividing"):
        b.shuffle("input", 4)
    with pytest.raises(ConfigError, match="height and width"):
        b.transpose("input")
    with pytest.raises(ConfigError, match="slice 7 of 6"):
        b.slice("input", 7)
    with pytest.raises(ConfigError, match="positive number of pixels"):
        b.pad("input", 0)
    with pytest.raises(ConfigError, match="gate must be"):
        b.scale("input", "input")
    with pytest.raises(ConfigError, match="squeeze-excite gate"):
        b.squeeze_excite("input", 2, "tanh")


def test_onnx_windows_are_read_per_axis_with_pads_and_dilation(tmp_path: Path) -> None:
    """Non-square, dilated, unpadded and SAME-padded convs: MACs match the ONNX reader's (kh x kw, not kh x kh)."""
    from edgetune.models._summary import summarize_onnx
    from tests.models._onnx_models import WINDOW_MACS, windows_onnx

    path = windows_onnx(tmp_path)
    graph, estimated = graph_from_onnx(path)
    assert not estimated and [op.kind for op in graph.ops] == ["conv"] * 5 + ["maxpool", "fc"]
    ops = {op.name: op for op in graph.ops}
    assert {name: op.macs for name, op in ops.items() if op.macs} == WINDOW_MACS
    assert graph.macs == summarize_onnx(path)[2]
    assert ops["k1x7"].kernel_hw == (1, 7) and ops["k1x7"].padding == (0, 3, 0, 3) and ops["k1x7"].pads is None
    assert ops["k7x1"].kernel_hw == (7, 1) and ops["k7x1"].params == 16 * 16 * 7 + 16
    assert ops["dilated"].dilation == (2, 2) and ops["dilated"].padding == (2, 2, 2, 2)
    assert ops["valid"].padding == (0, 0, 0, 0) and (ops["valid"].hout, ops["valid"].wout) == (18, 18)
    assert ops["same_upper"].padding == (0, 0, 1, 1) and ops["same_upper"].stride_hw == (2, 2)
    assert ops["pool"].kernel_hw == (2, 2) and ops["pool"].padding == (0, 0, 0, 0)


def test_a_non_square_kernel_has_the_features_of_its_window(tmp_path: Path) -> None:
    """A 1x7 conv reduces over 7 pixels (it read as a 1x1 before): reduce, MACs, and the square side of that area."""
    import math

    from edgetune.predict import FusionRules, split_kernels
    from edgetune.predict._sampling import feature_values
    from tests.models._onnx_models import WINDOW_MACS, windows_onnx

    graph, _ = graph_from_onnx(windows_onnx(tmp_path))
    values = {k.head.name: feature_values(k) for k in split_kernels(graph, FusionRules())}
    assert values["k1x7"]["reduce"] == 8 * 7 and values["k7x1"]["reduce"] == 16 * 7
    assert values["k1x7"]["kernel"] == pytest.approx(math.sqrt(7)) and values["k1x7"]["stride"] == 1.0
    assert values["k1x7"]["log_macs"] == pytest.approx(math.log1p(WINDOW_MACS["k1x7"]))
    assert values["dilated"]["kernel"] == 3.0 and values["same_upper"]["stride"] == 2.0


def test_windows_survive_the_dict_form_and_the_onnx_export(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    from tests.models._onnx_models import windows_onnx

    graph, _ = graph_from_onnx(windows_onnx(tmp_path))
    assert graph_from_dict(json.loads(json.dumps(graph_to_dict(graph)))) == graph
    path = to_onnx(graph, tmp_path / "again.onnx")
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": np.ones((1, 8, 20, 20), np.float32)})
    assert out[0].shape == (1, 10)
    back, _ = graph_from_onnx(path)
    window = ("kind", "kernel_hw", "stride_hw", "padding", "dilation", "hout", "wout")
    assert [[getattr(op, f) for f in window] for op in back.ops] == [[getattr(op, f) for f in window] for op in graph.ops]


def test_builder_graphs_keep_their_first_dict_form() -> None:
    """Square, 'same'-padded, undilated windows write the twelve fields the shipped profiles' records hold."""
    assert {len(row) for row in graph_to_dict(_real_network_ops())["ops"]} == {12}
