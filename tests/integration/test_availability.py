""" "The database is unavailable" is told apart from contention, on real
errors from the real drivers: a refused connection and a pool that gives no
connection are outages; a lock timeout on PostgreSQL and SQLite's "database
is locked" are contention (retried by the service as before)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from ledger.store.availability import (
    DatabaseDownError,
    DatabaseUnavailableError,
    fast_failure,
    unavailable_reason,
)
from ledger.store.database import DatabaseURL
from ledger.store.eventstore import EventStore
from tests.e2e.conftest import free_port


def test_a_refused_connection_is_an_outage() -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(
            host="127.0.0.1", port=free_port(), user="postgres", dbname="x", connect_timeout=2
        )
    assert unavailable_reason(caught.value)
    wrapped = OperationalError("wrapped")
    wrapped.__cause__ = caught.value
    assert unavailable_reason(wrapped)
    assert not fast_failure(wrapped)


def test_opening_a_store_whose_server_is_down_fails_within_the_bound() -> None:
    url = DatabaseURL.parse(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError):
        EventStore(url)
    assert time.monotonic() - started < url.timeout + 1.5


@pytest.mark.postgres
def test_a_lock_timeout_is_contention_not_an_outage(postgres_url: DatabaseURL) -> None:
    kwargs = {
        "host": postgres_url.host,
        "port": postgres_url.port,
        "user": postgres_url.user,
        "dbname": postgres_url.dbname,
    }
    with psycopg.connect(**kwargs) as holder, psycopg.connect(**kwargs) as waiter:
        holder.execute(f'CREATE TABLE "{postgres_url.schema}".t (i int)')
        holder.commit()
        holder.execute(f'LOCK TABLE "{postgres_url.schema}".t IN EXCLUSIVE MODE')
        waiter.execute("SET lock_timeout = '50ms'")
        with pytest.raises(psycopg.OperationalError) as caught:
            waiter.execute(f'LOCK TABLE "{postgres_url.schema}".t IN EXCLUSIVE MODE')
    assert caught.value.sqlstate == "55P03"
    assert unavailable_reason(caught.value) is None


def test_sqlite_busy_is_contention_not_an_outage(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (i int)")
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(path, timeout=0.05)
    with pytest.raises(sqlite3.OperationalError) as caught:
        waiter.execute("INSERT INTO t VALUES (1)")
    holder.close()
    waiter.close()
    assert unavailable_reason(caught.value) is None


def test_a_known_outage_is_a_fast_failure() -> None:
    down = DatabaseDownError("the database is unavailable: connection refused")
    wrapped = OperationalError(str(down))
    wrapped.__cause__ = down
    assert fast_failure(wrapped)
    assert unavailable_reason(wrapped)
