"""`edgetune bench` options from issue 17 as a user meets them: per-layer, sweep, batch, iterations, targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import edgetune, error_line

QUICK = ("--budget-s", "0.2", "--min-repeats", "5")


def test_per_layer_on_two_runtimes_writes_table_json_csv_and_chart(tiny_onnx: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    folder = tmp_path / "layers"
    proc = edgetune("bench", str(tiny_onnx), "-r", "onnxruntime", "-r", "openvino", "--threads", "1", *QUICK,
                    "--per-layer", "--top", "2", "--per-layer-out", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "slowest 2 of" in proc.stdout and "of the end-to-end median" in proc.stdout
    assert "inf/s" in proc.stdout and "IQR/med" in proc.stdout and "max ms" in proc.stdout and " cv " not in proc.stdout
    layers = json.loads((folder / "layers.json").read_text())["per_layer"]
    assert {p["runtime"] for p in layers} == {"onnxruntime", "openvino"}
    assert (folder / "layers.csv").is_file() and len(list(folder.glob("*.layers.svg"))) == 2


def test_sweep_batch_and_iterations_in_json(dynamic_onnx: Path) -> None:
    proc = edgetune("bench", str(dynamic_onnx), "-r", "onnxruntime", "--input-shape", "1x1x8x8", "--input-shape",
                    "4x1x8x8", "--iterations", "12", "--json")
    assert proc.returncode == 0, proc.stderr
    shapes = json.loads(proc.stdout)["shapes"]
    assert [(s["shape"], s["batch"]) for s in shapes] == [("1x1x8x8", 1), ("4x1x8x8", 4)]
    for shape in shapes:
        latency = shape["candidates"][0]["latency"]
        assert latency["n"] == 12
        assert latency["throughput_per_s"] == pytest.approx(shape["batch"] * 1000 / latency["median_ms"])
    proc = edgetune("bench", str(dynamic_onnx), "-r", "onnxruntime", "--batch-size", "2", "--iterations", "6", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["batch"] == 2 and data["candidates"][0]["latency"]["n"] == 6


@pytest.mark.parametrize("args, message", [
    (("--per-layer-out", "x"), "--per-layer-out needs --per-layer"),
    (("--per-layer", "--top", "0"), "--top must be at least 1"),
    (("--iterations", "0"), "--iterations must be"),
    (("--batch-size", "0"), "--batch-size must be between"),
    (("--target", "llvm -mfoo=1"), "unknown attribute -mfoo"),
    (("--target", "nope.yaml"), "does not exist"),
    (("--rpc-key", "k"), "--rpc-key is for targets reached over RPC"),
])
def test_bad_options_are_one_line_errors(tiny_onnx: Path, args: tuple[str, ...], message: str) -> None:
    proc = edgetune("bench", str(tiny_onnx), *args)
    assert proc.returncode != 0
    assert message in error_line(proc)
