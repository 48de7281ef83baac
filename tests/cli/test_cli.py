"""The CLI as a user meets it: exit codes, one-line errors, tables and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def edgetune(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "edgetune.cli.main", *args], capture_output=True, text=True, env=full_env, timeout=600,
    )


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_targets_list_and_show_json() -> None:
    proc = edgetune("targets", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["host-cpu"]["runnable"] and not rows["rpi4"]["runnable"] and rows["rpi4"]["reason"]
    proc = edgetune("targets", "show", "host-cpu", "--json")
    assert json.loads(proc.stdout)["cpu"]["model"] != "auto"
    table = edgetune("targets", "list")
    assert "host-cpu" in table.stdout and "ethos-u55-128" in table.stdout


def test_inspect(tiny_onnx: Path) -> None:
    proc = edgetune("inspect", str(tiny_onnx), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["inputs"][0]["shape"] == [1, 1, 8, 8] and summary["macs"] > 0 and summary["op_counts"]["Conv"] == 1


def test_compile_and_bench(tiny_onnx: Path, tmp_path: Path) -> None:
    results = tmp_path / "r.sqlite"
    proc = edgetune("compile", str(tiny_onnx), "-o", str(tmp_path / "out"), "--budget-s", "0.3",
                    "--runtime", "onnxruntime", "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    # fp32 or int8: which one is faster is the machine's call (a noisy VM has flipped it)
    assert "winner: onnxruntime-" in proc.stdout and "manifest:" in proc.stdout
    assert (tmp_path / "out" / "tiny.onnx").exists()
    proc = edgetune("bench", str(tiny_onnx), "--budget-s", "0.3", "--runtime", "onnxruntime", "--json",
                    "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["candidates"][0]["latency"]["median_ms"] > 0 and data["results_store"] == str(results)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["compile", "MISSING.onnx"], "does not exist"),
        (["compile", "{corrupt}"], "not a valid ONNX model"),
        (["compile", "{onnx}", "--target", "toaster"], "unknown target 'toaster'"),
        (["compile", "{onnx}", "--target", "rpi4"], "cannot run on this machine"),
        (["bench", "{onnx}", "--input-shape", "1x1x8"], "rank 4"),
        (["inspect", "{onnx}", "--input-shape", "1xbanana"], "bad input shape"),
        (["targets", "show", "nope"], "valid targets: "),
        (["zoo", "export", "nope", "-o", "x.pt2"], "unknown zoo model"),
    ],
)
def test_user_errors_are_one_line(args: list[str], needle: str, tiny_onnx: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00garbage" * 50)
    argv = [a.format(onnx=tiny_onnx, corrupt=corrupt) for a in args]
    proc = edgetune(*argv)
    assert proc.returncode != 0
    assert needle in error_line(proc)
    assert "Traceback" not in proc.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = edgetune("--debug", "compile", str(tmp_path / "missing.onnx"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_bad_target_yaml_via_env(tmp_path: Path, tiny_onnx: Path) -> None:
    (tmp_path / "bad.yaml").write_text("schema_version: 1\nname: bad\nkind: cpu\nthreads: lots\n")
    proc = edgetune("targets", "list", env={"EDGETUNE_TARGETS_DIR": str(tmp_path)})
    assert proc.returncode != 0
    line = error_line(proc)
    assert "bad.yaml" in line and "'threads'" in line


def test_zoo_export_trains(tmp_path: Path) -> None:
    proc = edgetune("zoo", "export", "digits-cnn", "--train-epochs", "8", "-o", str(tmp_path / "d.pt2"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["val_accuracy"] > 0.6 and Path(info["path"]).exists()
