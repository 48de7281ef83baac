from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgetune.bench import MeasurementRecord, ResultsStore, default_results_path, new_run_id
from edgetune.errors import ResultsStoreError


def _record(run_id: str = "r1", median: float = 1.5) -> MeasurementRecord:
    return MeasurementRecord(
        run_id=run_id, target="host-cpu", candidate="onnxruntime-fp32", runtime="onnxruntime", precision="fp32",
        model_name="m", model_hash="abc", threads=2, status="ok", fingerprint={"cpu_model": "X"},
        fingerprint_hash="f" * 16, stats={"n": 3, "median_ms": median}, samples_ms=(1.0, median, 2.0),
    )


def test_rows_are_appended_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        first = store.append(_record("r1", 1.5))
        second = store.append(_record("r2", 2.5))
        assert second > first
    with ResultsStore(path) as store:  # persisted across connections
        rows = store.rows()
        assert [r["median_ms"] for r in rows] == [1.5, 2.5]
        assert rows[0]["samples_ms"] == [1.0, 1.5, 2.0] and rows[0]["fingerprint"] == {"cpu_model": "X"}
        assert [r["run_id"] for r in store.rows(run_id="r2")] == ["r2"]
        assert [run for run, _, _ in store.runs()] == ["r1", "r2"]


def test_rows_cannot_be_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.append(_record())
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE measurements SET median_ms = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM measurements")


def test_default_path_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGETUNE_RESULTS", str(tmp_path / "x.sqlite"))
    assert default_results_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("EDGETUNE_RESULTS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_results_path() == tmp_path / "edgetune" / "results.sqlite"


def test_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ResultsStoreError, match="--results"):
        ResultsStore(blocker / "sub" / "r.sqlite")
    with pytest.raises(ResultsStoreError, match="postgresql://"):
        ResultsStore("mysql://user:secret@localhost/db")


def test_run_ids_sort_and_differ() -> None:
    a, b = new_run_id("abc123"), new_run_id(None)
    assert a != b and "abc123" in a and "nogit" in b


def test_old_store_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with ResultsStore(path) as store:
        store.append(_record("old"))
    conn = sqlite3.connect(path)  # simulate a store written before runs_per_sample existed
    conn.executescript(
        "DROP TRIGGER measurements_no_update; DROP TRIGGER measurements_no_delete;"
        "ALTER TABLE measurements DROP COLUMN runs_per_sample; ALTER TABLE measurements DROP COLUMN suite;"
    )
    conn.close()
    with ResultsStore(path) as store:
        store.append(_record("new"))
        rows = store.rows()
    assert [r["run_id"] for r in rows] == ["old", "new"]
    assert rows[0]["runs_per_sample"] is None and rows[1]["runs_per_sample"] == 1
