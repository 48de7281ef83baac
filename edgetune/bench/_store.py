"""Append-only results store: one row per measurement, never rewritten.

SQLite by default (a file); PostgreSQL (``postgresql://user:pass@host/db``) for a team's shared
history. The URL comes from --results or $EDGETUNE_RESULTS; its password is never printed.
The table is declared once with SQLAlchemy Core, which writes each dialect's SQL; only the
append-only triggers are written per dialect (SQLAlchemy has no construct for them).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from edgetune.errors import ResultsStoreError, one_line

RESULTS_ENV = "EDGETUNE_RESULTS"
_STAT_COLUMNS = ("n", "median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "cv", "ci_low_ms", "ci_high_ms")
# Rows are never updated or deleted, enforced in the database so that no client can rewrite history.
_APPEND_ONLY = {
    "sqlite": (
        "CREATE TRIGGER IF NOT EXISTS measurements_no_update BEFORE UPDATE ON measurements "
        "BEGIN SELECT RAISE(ABORT, 'results are append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS measurements_no_delete BEFORE DELETE ON measurements "
        "BEGIN SELECT RAISE(ABORT, 'results are append-only'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION edgetune_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'results are append-only'; END $$ LANGUAGE plpgsql",
        "CREATE OR REPLACE TRIGGER measurements_append_only BEFORE UPDATE OR DELETE ON measurements "
        "FOR EACH ROW EXECUTE FUNCTION edgetune_append_only()",
    ),
}


def _measurements_table() -> Any:
    """The measurements table. Columns added after the first release go at the end, nullable (old rows read NULL)."""
    from sqlalchemy import DOUBLE_PRECISION, BigInteger, Column, Integer, MetaData, Table, Text, text

    return Table(
        "measurements", MetaData(),
        # BIGSERIAL on PostgreSQL; SQLite's AUTOINCREMENT needs the INTEGER rowid alias
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        *(Column(name, Text, nullable=False) for name in ("run_id", "created_at", "target", "candidate", "runtime",
                                                          "precision", "model_name", "model_hash")),
        Column("artifact_hash", Text), Column("artifact_size_bytes", BigInteger),
        Column("threads", Integer, nullable=False),
        Column("simulated", Integer, nullable=False, server_default=text("0")),
        Column("status", Text, nullable=False), Column("error", Text), Column("n", Integer),
        *(Column(name, DOUBLE_PRECISION) for name in ("median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms",
                                                      "cv", "ci_low_ms", "ci_high_ms")),
        Column("converged", Integer),
        *(Column(name, DOUBLE_PRECISION) for name in ("peak_rss_mb", "rss_delta_mb", "load_ms", "build_s")),
        Column("samples_ms", Text),
        Column("fingerprint", Text, nullable=False), Column("fingerprint_hash", Text, nullable=False),
        # added later
        Column("runs_per_sample", Integer), Column("suite", Text), Column("entry", Text),
        Column("session_index", Integer), Column("accuracy", Text),
        sqlite_autoincrement=True,
    )


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


def _engine(text: str, is_postgres: bool) -> Any:
    """A SQLAlchemy engine: the file's folder is created for SQLite; PostgreSQL goes through psycopg (3)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    if not is_postgres:
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(make_url("sqlite://").set(database=text), connect_args={"timeout": 30})
    try:
        return create_engine(make_url(text).set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": 10})
    except ImportError:
        raise ResultsStoreError("a PostgreSQL results store needs psycopg; pip install 'edgetune[postgres]'") from None


def _open(engine: Any, table: Any) -> None:
    """Create the table when missing, add the columns an older store lacks, and (re)install the triggers."""
    from sqlalchemy import inspect, text
    from sqlalchemy.schema import CreateColumn

    with engine.begin() as conn:
        table.metadata.create_all(conn, checkfirst=True)
        present = {column["name"] for column in inspect(conn).get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {CreateColumn(column).compile(conn)}"))
        for statement in _APPEND_ONLY[conn.dialect.name]:
            conn.execute(text(statement))


def _message(exc: BaseException) -> str:
    """The database driver's own message (SQLAlchemy wraps it with the SQL and a link), one line, redacted.

    Redacted before it is cut: a line cut short first could end inside a URL's password, past redact's pattern.
    """
    text = redact(one_line(getattr(exc, "orig", None) or exc, limit=100_000))
    return text if len(text) <= 300 else text[:297] + "..."


class ResultsStore:
    """The results store. Each append commits at once, so an interrupted run keeps what finished."""

    def __init__(self, location: Union[str, Path, None] = None) -> None:
        text = str(location) if location else str(default_results_path())
        self.is_postgres = text.startswith(("postgresql://", "postgres://"))
        self.location = redact(text) if self.is_postgres else text
        self.path: Optional[Path] = None if self.is_postgres else Path(text)
        if "://" in text and not self.is_postgres:
            raise ResultsStoreError(f"results store '{self.location}': use a SQLite file path or a postgresql:// URL")
        self._table = _measurements_table()
        try:
            self._engine = _engine(text, self.is_postgres)
            _open(self._engine, self._table)
        except ResultsStoreError:
            raise
        except Exception as exc:  # SQLAlchemy's wrapped sqlite3 / psycopg errors, OSError
            raise ResultsStoreError(
                f"cannot open results store '{self.location}': {_message(exc)}; pass --results with a writable path or URL"
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
            with self._engine.begin() as conn:
                return int(conn.execute(self._table.insert().values(row)).inserted_primary_key[0])
        except Exception as exc:
            raise ResultsStoreError(f"cannot write to results store '{self.location}': {_message(exc)}") from None

    def rows(self, run_id: Optional[str] = None, target: Optional[str] = None) -> list[dict[str, Any]]:
        """Stored measurements, oldest first, optionally filtered by run or target."""
        from sqlalchemy import select

        table = self._table
        query = select(table).order_by(table.c.id)
        if run_id:
            query = query.where(table.c.run_id == run_id)
        if target:
            query = query.where(table.c.target == target)
        with self._engine.connect() as conn:
            return [_decode(dict(r)) for r in conn.execute(query).mappings()]

    def runs(self, target: Optional[str] = None) -> Iterator[tuple[str, str, int]]:
        """(run_id, first timestamp, row count) for each run, oldest first."""
        from sqlalchemy import func, select

        table = self._table
        first = func.min(table.c.id).label("first")
        query = (select(table.c.run_id, func.min(table.c.created_at).label("started"), func.count().label("n"), first)
                 .group_by(table.c.run_id).order_by(first))
        if target:
            query = query.where(table.c.target == target)
        with self._engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
        yield from ((r["run_id"], r["started"], int(r["n"])) for r in rows)

    def close(self) -> None:
        self._engine.dispose()

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
