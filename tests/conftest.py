"""Shared fixtures: one Hypothesis profile, and the two real backends.

PostgreSQL: each test run creates its own database (``ledger_test_<pid>_<hex>``)
on ``$LEDGER_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/``)
and drops it at the end; each test gets its own schema in it. Under
``CI=true`` an unreachable server fails the run -- the PostgreSQL tests must
run there, never skip. Elsewhere they skip with the reason.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from ledger.store.database import DatabaseURL
from ledger.store.postgres import create_database, create_schema, drop_database, server_reachable

settings.register_profile(
    "ledger", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
# CI must be reproducible: ``derandomize=True`` seeds every test from a hash of
# the test itself, so a red CI run fails the same way again on any machine
# (with the same Hypothesis and Python), and ``database=None`` because CI keeps
# no example database between runs. The profile sets no ``max_examples``: tests
# that choose their own count (``@settings(max_examples=...)``) keep it, and the
# rest run Hypothesis' default (100). Locally, the "ledger" profile explores
# fresh random examples on every run and keeps failures in .hypothesis/.
settings.register_profile(
    "ci", parent=settings.get_profile("ledger"), derandomize=True, database=None
)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "ledger")

IN_CI = os.environ.get("CI") == "true"
POSTGRES_SERVER = os.environ.get(
    "LEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/"
)
_schemas = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[DatabaseURL]:
    """This run's own PostgreSQL database."""
    name = f"ledger_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = DatabaseURL.parse(POSTGRES_SERVER.rstrip("/") + "/" + name)
    problem = server_reachable(url)
    if problem is not None:
        message = f"PostgreSQL at {url.host}:{url.port} is not reachable: {problem}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    create_database(url)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def postgres_url(postgres_database: DatabaseURL) -> DatabaseURL:
    """A fresh, empty schema in this run's database."""
    url = DatabaseURL.parse(
        f"{POSTGRES_SERVER.rstrip('/')}/{postgres_database.dbname}?schema=t{next(_schemas)}"
    )
    create_schema(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> DatabaseURL:
    return DatabaseURL.parse(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> DatabaseURL:
    """Each test using this runs once per backend."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: DatabaseURL = request.getfixturevalue(name)
    return url
