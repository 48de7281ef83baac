"""Suites: validation, a real suite run through the harness, and the CLI gate end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgetune.bench import ResultsStore, load_suite
from edgetune.errors import ConfigError
from edgetune.pipeline import run_suite
from tests.cli.test_cli import edgetune

SUITE = """
schema_version: 1
target: host-cpu
sessions: 2
budget_s: 0.2
entries:
  - name: tiny
    model: tiny.onnx
    runtimes: [onnxruntime]
    max_slowdown: 0.2
  - name: digits
    model: zoo:digits-cnn
    runtimes: [onnxruntime, litert]
  - name: broken
    model: missing.onnx
"""


@pytest.fixture
def suite_file(tmp_path: Path, tiny_onnx: Path) -> Path:
    shutil.copy(tiny_onnx, tmp_path / "tiny.onnx")
    path = tmp_path / "host-cpu.yaml"
    path.write_text(SUITE)
    return path


def test_builtin_suite_is_valid() -> None:
    suite = load_suite(Path(__file__).resolve().parents[2] / "benchmarks" / "suites" / "host-cpu.yaml")
    assert suite.target == "host-cpu" and suite.sessions >= 2 and suite.entries


@pytest.mark.parametrize(("text", "needle"), [
    (SUITE.replace("sessions: 2", "sessions: many"), "key 'sessions'"),
    (SUITE.replace("max_slowdown: 0.2", "max_slowdwn: 0.2"), "unknown key 'entries.0.max_slowdwn'"),
    (SUITE.replace("name: digits", "name: tiny"), "used twice"),
])
def test_bad_suite_files(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_suite(path)


def test_suite_run_stores_sessions_and_records_failures(suite_file: Path, isolated_results: Path) -> None:
    run = run_suite(load_suite(suite_file))
    assert set(run.evaluations) == {"tiny", "digits"} and "does not exist" in run.errors["broken"]
    with ResultsStore(isolated_results) as store:
        rows = store.rows(run_id=run.run_id)
    tiny = [r for r in rows if r["entry"] == "tiny"]
    assert [r["session_index"] for r in tiny] == [0, 1] and all(r["suite"] == "host-cpu" for r in rows)
    assert {r["candidate"] for r in rows if r["entry"] == "digits"} == {"onnxruntime-fp32", "litert-fp32"}


def test_cli_suite_compare_export_report(suite_file: Path, tmp_path: Path) -> None:
    results = str(tmp_path / "r.sqlite")
    first = edgetune("bench", "--suite", str(suite_file), "--results", results, "--json")
    assert first.returncode == 1  # the broken entry fails the run...
    assert json.loads(first.stdout)["errors"]["broken"]  # ...and says why
    suite_file.write_text(SUITE.split("  - name: broken")[0])
    assert edgetune("bench", "--suite", str(suite_file), "--results", results).returncode == 0
    baseline = tmp_path / "baselines" / "host-cpu.json"
    exported = edgetune("bench", "export", "previous", "-o", str(baseline), "--results", results)
    assert exported.returncode == 0 and baseline.exists()
    junit = tmp_path / "gate.xml"
    gate = edgetune("bench", "compare", "--baseline", str(baseline), "--candidate", "latest", "--suite", str(suite_file),
                    "--results", results, "--json", "--junit", str(junit))
    data = json.loads(gate.stdout)
    assert {c["entry"] for c in data["comparisons"]} == {"tiny", "digits"}
    assert gate.returncode == (3 if data["failed"] else 0)  # 3: the gate found a regression
    assert "<testsuite" in junit.read_text()
    runs = edgetune("bench", "runs", "--results", results, "--json")
    assert len(json.loads(runs.stdout)) == 2
    report = edgetune("report", "-o", str(tmp_path / "dash.html"), "--results", results)
    assert report.returncode == 0 and "<svg" in (tmp_path / "dash.html").read_text()
    missing = edgetune("bench", "compare", "--baseline", "nope", "--results", results)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr  # a usage error, not a regression


def test_bench_needs_model_or_suite() -> None:
    proc = edgetune("bench", "run")
    assert proc.returncode != 0 and "MODEL or --suite" in proc.stderr
