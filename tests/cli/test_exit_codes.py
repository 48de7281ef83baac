"""Exit codes CI can tell apart: 0 ok, 1 error, 2 usage, 3 regression found by the gate."""

from __future__ import annotations

import json
from pathlib import Path

from edgetune.bench import export_baseline
from edgetune.errors import EXIT_ERROR, EXIT_OK, EXIT_REGRESSION, EXIT_USAGE
from tests.bench.test_compare import _rows
from tests.cli.test_cli import edgetune, error_line


def test_usage_errors_exit_2(tiny_onnx: Path, tmp_path: Path) -> None:
    unknown_option = edgetune("compile", str(tiny_onnx), "--no-such-option")
    assert unknown_option.returncode == EXIT_USAGE
    bad_value = edgetune("compile", str(tiny_onnx), "--target", "host-cpu", "--emit", "c", "-o", str(tmp_path / "o"))
    assert bad_value.returncode == EXIT_USAGE and "--emit c writes TensorFlow Lite Micro sources" in error_line(bad_value)


def test_a_tool_error_exits_1(tmp_path: Path) -> None:
    missing = edgetune("inspect", str(tmp_path / "missing.onnx"))
    assert missing.returncode == EXIT_ERROR and "does not exist" in error_line(missing)


def test_the_gate_exits_3_on_a_regression_and_0_without(tmp_path: Path) -> None:
    base = export_baseline(_rows("a", [1.0, 1.01, 0.99]), tmp_path / "base.json")
    slower = export_baseline(_rows("b", [1.2, 1.21, 1.19], seed=1), tmp_path / "slower.json")
    same = export_baseline(_rows("c", [1.0, 1.0, 1.0], seed=2), tmp_path / "same.json")
    results = str(tmp_path / "r.sqlite")
    gate = edgetune("bench", "compare", "--baseline", str(base), "--candidate", str(slower), "--results", results,
                    "--json")
    assert gate.returncode == EXIT_REGRESSION and json.loads(gate.stdout)["failed"] == 1
    calm = edgetune("bench", "compare", "--baseline", str(base), "--candidate", str(same), "--results", results)
    assert calm.returncode == EXIT_OK, calm.stderr


def test_compile_json_prints_the_manifest_when_no_candidate_wins(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Hardmax", ["c"], ["y"])],
        "hardmax_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "hardmax.onnx"))
    proc = edgetune("compile", str(tmp_path / "hardmax.onnx"), "--runtime", "litert", "-o", str(tmp_path / "out"),
                    "--json")
    assert proc.returncode == EXIT_ERROR
    manifest = json.loads(proc.stdout)
    assert manifest["winner"] is None and manifest["no_winner_reason"]
    assert manifest["candidates"] and all(c["status"] != "ok" and c["reason"] for c in manifest["candidates"])
    assert any("Hardmax" in c["reason"] for c in manifest["candidates"])  # the op that failed the conversion
    assert "Error: " in error_line(proc)
