"""The results store on a real PostgreSQL server (a team's shared history)."""

from __future__ import annotations

import pytest

from edgetune.bench import ResultsStore
from edgetune.errors import ResultsStoreError
from tests.bench.test_store import _record

pytestmark = pytest.mark.postgres


def test_append_read_and_append_only(postgres_url: str) -> None:
    import psycopg

    with ResultsStore(postgres_url) as store:
        assert store.is_postgres and "postgresql://" in store.location
        first = store.append(_record("pg-1", 1.5))
        second = store.append(_record("pg-2", 2.5))
        assert second > first
    with ResultsStore(postgres_url) as store:  # a second client sees the same history
        rows = [r for r in store.rows() if r["run_id"].startswith("pg-")]
        assert [r["median_ms"] for r in rows][-2:] == [1.5, 2.5]
        assert rows[-1]["samples_ms"] == [1.0, 2.5, 2.0] and rows[-1]["fingerprint"] == {"cpu_model": "X"}
        assert "pg-2" in [run for run, _, _ in store.runs()]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("UPDATE measurements SET median_ms = 0")
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("DELETE FROM measurements")


def test_bad_url_is_redacted(postgres_url: str) -> None:
    port = postgres_url.rsplit(":", 1)[1].split("/")[0]
    with pytest.raises(ResultsStoreError) as info:
        ResultsStore(f"postgresql://someone:hunter2@127.0.0.1:{port}/no_such_db")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
