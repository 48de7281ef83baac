"""Append-only results store on SQLite: one row per measurement, never rewritten."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional

from edgetune.errors import ResultsStoreError

RESULTS_ENV = "EDGETUNE_RESULTS"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    target TEXT NOT NULL,
    candidate TEXT NOT NULL,
    runtime TEXT NOT NULL,
    precision TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    artifact_hash TEXT,
    artifact_size_bytes INTEGER,
    threads INTEGER NOT NULL,
    simulated INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    error TEXT,
    n INTEGER,
    median_ms REAL, p90_ms REAL, p99_ms REAL, mean_ms REAL, std_ms REAL, min_ms REAL, cv REAL,
    ci_low_ms REAL, ci_high_ms REAL, converged INTEGER, runs_per_sample INTEGER,
    peak_rss_mb REAL, rss_delta_mb REAL, load_ms REAL, build_s REAL,
    samples_ms TEXT,
    fingerprint TEXT NOT NULL,
    fingerprint_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_run ON measurements(run_id);
CREATE INDEX IF NOT EXISTS measurements_target ON measurements(target, model_hash);
CREATE TRIGGER IF NOT EXISTS measurements_no_update BEFORE UPDATE ON measurements
BEGIN SELECT RAISE(ABORT, 'results are append-only'); END;
CREATE TRIGGER IF NOT EXISTS measurements_no_delete BEFORE DELETE ON measurements
BEGIN SELECT RAISE(ABORT, 'results are append-only'); END;
"""


# Columns added after the first release of the table: older stores get them on open, so a
# results history survives upgrades (rows are never rewritten; old rows read NULL).
_ADDED_COLUMNS = (("runs_per_sample", "INTEGER"),)


def default_results_path() -> Path:
    """$EDGETUNE_RESULTS, else $XDG_DATA_HOME/edgetune/results.sqlite (~/.local/share/...)."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "edgetune" / "results.sqlite"


@dataclass(frozen=True)
class MeasurementRecord:
    """One stored measurement (a candidate's timing on a target, or its failure)."""

    run_id: str
    target: str
    candidate: str
    runtime: str
    precision: str
    model_name: str
    model_hash: str
    threads: int
    status: str
    fingerprint: dict[str, Any]
    fingerprint_hash: str
    artifact_hash: Optional[str] = None
    artifact_size_bytes: Optional[int] = None
    simulated: bool = False
    error: Optional[str] = None
    stats: dict[str, Any] = field(default_factory=dict)
    converged: Optional[bool] = None
    peak_rss_mb: Optional[float] = None
    rss_delta_mb: Optional[float] = None
    load_ms: Optional[float] = None
    build_s: Optional[float] = None
    samples_ms: tuple[float, ...] = ()
    runs_per_sample: int = 1


_STAT_COLUMNS = ("n", "median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "cv", "ci_low_ms", "ci_high_ms")


class ResultsStore:
    """SQLite results store. Each append commits at once, so an interrupted run keeps what finished."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = Path(path) if path else default_results_path()
        if "://" in str(path or ""):
            raise ResultsStoreError(f"results store '{path}': only SQLite file paths are supported in this version")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=30)
            self._conn.row_factory = sqlite3.Row
            self._conn.executescript(_SCHEMA)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise ResultsStoreError(f"cannot open results store '{self.path}': {exc}; pass --results with a writable path") from None

    def _migrate(self) -> None:
        present = {row[1] for row in self._conn.execute("PRAGMA table_info(measurements)")}
        with self._conn:
            for name, sql_type in _ADDED_COLUMNS:
                if name not in present:
                    self._conn.execute(f"ALTER TABLE measurements ADD COLUMN {name} {sql_type}")

    def append(self, record: MeasurementRecord) -> int:
        """Store one measurement; returns its row id."""
        row: dict[str, Any] = {
            "run_id": record.run_id,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "target": record.target,
            "candidate": record.candidate,
            "runtime": record.runtime,
            "precision": record.precision,
            "model_name": record.model_name,
            "model_hash": record.model_hash,
            "artifact_hash": record.artifact_hash,
            "artifact_size_bytes": record.artifact_size_bytes,
            "threads": record.threads,
            "simulated": int(record.simulated),
            "status": record.status,
            "error": record.error,
            "converged": None if record.converged is None else int(record.converged),
            "peak_rss_mb": record.peak_rss_mb,
            "rss_delta_mb": record.rss_delta_mb,
            "load_ms": record.load_ms,
            "build_s": record.build_s,
            "samples_ms": json.dumps(list(record.samples_ms)),
            "runs_per_sample": record.runs_per_sample,
            "fingerprint": json.dumps(record.fingerprint, sort_keys=True),
            "fingerprint_hash": record.fingerprint_hash,
        }
        row.update({k: record.stats.get(k) for k in _STAT_COLUMNS})
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        try:
            with self._conn:
                cursor = self._conn.execute(f"INSERT INTO measurements ({columns}) VALUES ({marks})", row)
        except sqlite3.Error as exc:
            raise ResultsStoreError(f"cannot write to results store '{self.path}': {exc}") from None
        return int(cursor.lastrowid or 0)

    def rows(self, run_id: Optional[str] = None, target: Optional[str] = None) -> list[dict[str, Any]]:
        """Stored measurements, oldest first, optionally filtered by run or target."""
        clauses, params = [], []
        if run_id:
            clauses.append("run_id = ?")
            params.append(run_id)
        if target:
            clauses.append("target = ?")
            params.append(target)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        cursor = self._conn.execute(f"SELECT * FROM measurements{where} ORDER BY id", params)
        return [_decode(dict(r)) for r in cursor.fetchall()]

    def runs(self) -> Iterator[tuple[str, str, int]]:
        """(run_id, first timestamp, row count) for each run, oldest first."""
        cursor = self._conn.execute(
            "SELECT run_id, MIN(created_at), COUNT(*) FROM measurements GROUP BY run_id ORDER BY MIN(id)"
        )
        yield from ((r[0], r[1], r[2]) for r in cursor.fetchall())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row["fingerprint"] = json.loads(row["fingerprint"])
    row["samples_ms"] = json.loads(row["samples_ms"] or "[]")
    return row


def new_run_id(commit: Optional[str]) -> str:
    """A sortable, unique run id: UTC time, project commit (when known) and random suffix."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{commit or 'nogit'}-{os.urandom(2).hex()}"
