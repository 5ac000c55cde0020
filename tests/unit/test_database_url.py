"""One setting picks the store: SQLite paths and PostgreSQL URLs."""

from __future__ import annotations

import pytest

from ledger.store.database import DatabaseURL, DatabaseURLError


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("sqlite:///ledger.db", "ledger.db"),
        ("sqlite:////var/lib/ledger.db", "/var/lib/ledger.db"),
        ("data/ledger.db", "data/ledger.db"),
    ],
)
def test_sqlite_urls_and_bare_paths(text: str, path: str) -> None:
    url = DatabaseURL.parse(text)
    assert (url.backend, url.path) == ("sqlite", path)
    env = url.event_store_env()
    assert env["PERSISTENCE_MODULE"] == "ledger.store.sqlitefiles:PrivateSQLiteFactory"
    assert env["LEDGER_SQLITE_DBNAME"] == path  # prefixed: wins over stray env vars


def test_the_default_is_a_sqlite_file_in_the_working_directory() -> None:
    assert DatabaseURL.parse(None).path == "ledger.db"


def test_postgres_urls() -> None:
    url = DatabaseURL.parse(
        "postgresql://app:s%40cret@db.local:6543/ledger?schema=shop&pool_size=4"
    )
    assert (
        url.backend,
        url.user,
        url.password,
        url.host,
        url.port,
        url.dbname,
        url.schema,
        url.pool_size,
    ) == ("postgresql", "app", "s@cret", "db.local", 6543, "ledger", "shop", 4)
    env = url.event_store_env()
    assert env["POSTGRES_SCHEMA"] == "shop"
    assert env["POSTGRES_POOL_SIZE"] == "4"
    assert "s@cret" not in url.display()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sqlite://",
        "sqlite:///",
        "mysql://h/db",
        "postgresql://host/",
        "postgresql://h/db?schema=a;b",
        "postgresql://h:notaport/db",
    ],
)
def test_bad_urls_are_refused(text: str) -> None:
    with pytest.raises(DatabaseURLError):
        DatabaseURL.parse(text)
