"""`edgetune search` as a user meets it: one-line errors, a table, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import edgetune, error_line


@pytest.mark.parametrize("args, needle", [
    (["--strategy", "annealing"], "unknown strategy 'annealing'; valid strategies: nsga2"),
    (["--objective", "speed"], "unknown objective 'speed'"),
    (["--pruner", "sometimes"], "unknown pruner 'sometimes'"),
    (["--dataset", "no-such-data"], "not found"),
    (["--latency-budget-ms", "0.000001"], "no network in the 'mobilenet' space can meet"),
    (["--storage", "postgresql://u:secretpw@127.0.0.1:1/x"], "cannot open the study storage"),
])
def test_bad_inputs_give_one_error_line(args: list[str], needle: str, tmp_path: Path) -> None:
    proc = edgetune("search", *args, "--trials", "1", "-o", str(tmp_path / "out"))
    assert proc.returncode != 0
    line = error_line(proc)
    assert needle in line and "secretpw" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_search_cli_end_to_end_then_status(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("space: plain\nresolution: [8]\nblocks: [1]\nchannels: [8]\n"
                     "hp:\n  batch_size: [128]\n  epochs: [1, 1]\ndeploy:\n  precision: [fp32]\n  prune_ratio: [0.0]\n")
    out = tmp_path / "out"
    proc = edgetune("search", "--space", str(space), "--trials", "2", "--strategy", "random", "--no-compile",
                    "--top-k", "1", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Pareto front" in proc.stdout and "predicted ms" in proc.stdout and "measured ms" in proc.stdout
    status = edgetune("search", "status", "-o", str(out), "--json")
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert rows[0]["trials"] == 2 and rows[0]["states"]["complete"] == 2
