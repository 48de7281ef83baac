"""Append-only results store: one row per measurement, never rewritten.

SQLite by default (a file); PostgreSQL (``postgresql://user:pass@host/db``) for a team's shared
history. The URL comes from --results or $EDGETUNE_RESULTS; its password is never printed.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from edgetune.errors import ResultsStoreError, one_line

RESULTS_ENV = "EDGETUNE_RESULTS"

# (name, SQL type). Order is the table's; columns added after the first release go at the end
# and are added to older stores on open (old rows read NULL), so a history survives upgrades.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "TEXT NOT NULL"), ("created_at", "TEXT NOT NULL"), ("target", "TEXT NOT NULL"),
    ("candidate", "TEXT NOT NULL"), ("runtime", "TEXT NOT NULL"), ("precision", "TEXT NOT NULL"),
    ("model_name", "TEXT NOT NULL"), ("model_hash", "TEXT NOT NULL"), ("artifact_hash", "TEXT"),
    ("artifact_size_bytes", "BIGINT"), ("threads", "INTEGER NOT NULL"), ("simulated", "INTEGER NOT NULL DEFAULT 0"),
    ("status", "TEXT NOT NULL"), ("error", "TEXT"), ("n", "INTEGER"),
    ("median_ms", "DOUBLE PRECISION"), ("p90_ms", "DOUBLE PRECISION"), ("p99_ms", "DOUBLE PRECISION"),
    ("mean_ms", "DOUBLE PRECISION"), ("std_ms", "DOUBLE PRECISION"), ("min_ms", "DOUBLE PRECISION"),
    ("cv", "DOUBLE PRECISION"), ("ci_low_ms", "DOUBLE PRECISION"), ("ci_high_ms", "DOUBLE PRECISION"),
    ("converged", "INTEGER"), ("peak_rss_mb", "DOUBLE PRECISION"), ("rss_delta_mb", "DOUBLE PRECISION"),
    ("load_ms", "DOUBLE PRECISION"), ("build_s", "DOUBLE PRECISION"), ("samples_ms", "TEXT"),
    ("fingerprint", "TEXT NOT NULL"), ("fingerprint_hash", "TEXT NOT NULL"),
    # added later
    ("runs_per_sample", "INTEGER"), ("suite", "TEXT"), ("entry", "TEXT"), ("session_index", "INTEGER"),
    ("accuracy", "TEXT"),
)
_FIRST_RELEASE = 32  # columns in the first schema; the rest are migrations
_STAT_COLUMNS = ("n", "median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "cv", "ci_low_ms", "ci_high_ms")


def default_results_path() -> Path:
    """$EDGETUNE_RESULTS, else $XDG_DATA_HOME/edgetune/results.sqlite (~/.local/share/...)."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "edgetune" / "results.sqlite"


def redact(url: str) -> str:
    """A database URL with its password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


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
    suite: Optional[str] = None
    entry: Optional[str] = None
    session_index: Optional[int] = None
    accuracy: Optional[dict[str, Any]] = None


class _Sqlite:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), timeout=30)
        self.conn.row_factory = sqlite3.Row
        body = ",\n".join(f"{n} {t}" for n, t in COLUMNS[:_FIRST_RELEASE])
        self.conn.executescript(f"""
CREATE TABLE IF NOT EXISTS measurements (id INTEGER PRIMARY KEY AUTOINCREMENT, {body});
CREATE TRIGGER IF NOT EXISTS measurements_no_update BEFORE UPDATE ON measurements
BEGIN SELECT RAISE(ABORT, 'results are append-only'); END;
CREATE TRIGGER IF NOT EXISTS measurements_no_delete BEFORE DELETE ON measurements
BEGIN SELECT RAISE(ABORT, 'results are append-only'); END;
""")

    def columns(self) -> set[str]:
        return {row[1] for row in self.conn.execute("PRAGMA table_info(measurements)")}

    def execute(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self.conn:
            cursor = self.conn.execute(sql, params)
            return [dict(r) for r in cursor.fetchall()] if cursor.description else []

    def insert(self, row: dict[str, Any]) -> int:
        sql = f"INSERT INTO measurements ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"
        with self.conn:
            return int(self.conn.execute(sql, row).lastrowid or 0)

    def close(self) -> None:
        self.conn.close()


class _Postgres:
    def __init__(self, url: str) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise ResultsStoreError("a PostgreSQL results store needs psycopg; pip install 'edgetune[postgres]'") from None
        self.conn = psycopg.connect(url, row_factory=dict_row, autocommit=True, connect_timeout=10)
        body = ",\n".join(f"{n} {t}" for n, t in COLUMNS[:_FIRST_RELEASE])
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS measurements (id BIGSERIAL PRIMARY KEY, {body})")
        self.conn.execute(
            "CREATE OR REPLACE FUNCTION edgetune_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'results are append-only'; END $$ LANGUAGE plpgsql"
        )
        self.conn.execute(
            "CREATE OR REPLACE TRIGGER measurements_append_only BEFORE UPDATE OR DELETE ON measurements "
            "FOR EACH ROW EXECUTE FUNCTION edgetune_append_only()"
        )

    def columns(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'measurements'"
        ).fetchall()
        return {r["column_name"] for r in rows}

    @staticmethod
    def _sql(sql: str) -> str:
        return re.sub(r":(\w+)", r"%(\1)s", sql).replace("?", "%s")

    def execute(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(self._sql(sql), params)
        return list(cursor.fetchall()) if cursor.description else []

    def insert(self, row: dict[str, Any]) -> int:
        sql = f"INSERT INTO measurements ({', '.join(row)}) VALUES ({', '.join('%(' + k + ')s' for k in row)}) RETURNING id"
        return int(self.conn.execute(sql, row).fetchone()["id"])

    def close(self) -> None:
        self.conn.close()


class ResultsStore:
    """The results store. Each append commits at once, so an interrupted run keeps what finished."""

    def __init__(self, location: Union[str, Path, None] = None) -> None:
        text = str(location) if location else str(default_results_path())
        self.is_postgres = text.startswith(("postgresql://", "postgres://"))
        self.location = redact(text) if self.is_postgres else text
        self.path: Optional[Path] = None if self.is_postgres else Path(text)
        if "://" in text and not self.is_postgres:
            raise ResultsStoreError(f"results store '{self.location}': use a SQLite file path or a postgresql:// URL")
        try:
            self._db: Any = _Postgres(text) if self.is_postgres else _Sqlite(Path(text))
            present = self._db.columns()
            for name, sql_type in COLUMNS[_FIRST_RELEASE:]:
                if name not in present:
                    self._db.execute(f"ALTER TABLE measurements ADD COLUMN {name} {sql_type}")
        except ResultsStoreError:
            raise
        except Exception as exc:  # sqlite3.Error, OSError, psycopg.Error
            # the whole line, redacted: a line cut short first could end inside a URL's password, past redact's pattern
            message = redact(one_line(exc, limit=sys.maxsize))
            raise ResultsStoreError(
                f"cannot open results store '{self.location}': {message}; pass --results with a writable path or URL"
            ) from None

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
            "suite": record.suite,
            "entry": record.entry,
            "session_index": record.session_index,
            "accuracy": json.dumps(record.accuracy) if record.accuracy else None,
        }
        row.update({k: record.stats.get(k) for k in _STAT_COLUMNS})
        try:
            return self._db.insert(row)
        except Exception as exc:
            raise ResultsStoreError(f"cannot write to results store '{self.location}': {redact(one_line(exc, limit=sys.maxsize))}") from None

    def rows(self, run_id: Optional[str] = None, target: Optional[str] = None) -> list[dict[str, Any]]:
        """Stored measurements, oldest first, optionally filtered by run or target."""
        clauses, params = [], {}
        if run_id:
            clauses.append("run_id = :run_id")
            params["run_id"] = run_id
        if target:
            clauses.append("target = :target")
            params["target"] = target
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return [_decode(r) for r in self._db.execute(f"SELECT * FROM measurements{where} ORDER BY id", params)]

    def runs(self, target: Optional[str] = None) -> Iterator[tuple[str, str, int]]:
        """(run_id, first timestamp, row count) for each run, oldest first."""
        where = " WHERE target = :target" if target else ""
        rows = self._db.execute(
            f"SELECT run_id, MIN(created_at) AS started, COUNT(*) AS n, MIN(id) AS first FROM measurements{where} "
            "GROUP BY run_id ORDER BY first", {"target": target} if target else {},
        )
        yield from ((r["run_id"], r["started"], int(r["n"])) for r in rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row["fingerprint"] = json.loads(row["fingerprint"])
    row["samples_ms"] = json.loads(row["samples_ms"] or "[]")
    row["accuracy"] = json.loads(row["accuracy"]) if row.get("accuracy") else None
    return row


def new_run_id(commit: Optional[str]) -> str:
    """A sortable, unique run id: UTC time, project commit (when known) and random suffix."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{commit or 'nogit'}-{os.urandom(2).hex()}"
