"""PostgreSQL housekeeping: creating and dropping whole databases.

Used by tests (each run gets its own database) and by ``ledger`` commands
that are told to create the database they point at.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from ledger.store.database import DatabaseURL


def _admin_connection(url: DatabaseURL) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=url.host, port=url.port, user=url.user, password=url.password,
        dbname="postgres", autocommit=True, connect_timeout=5,
    )


def server_reachable(url: DatabaseURL) -> str | None:
    """None if the server answers, else the reason it does not."""
    try:
        with _admin_connection(url) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None


def create_database(url: DatabaseURL) -> None:
    with _admin_connection(url) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (url.dbname,)
        ).fetchone()
        if found is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.dbname)))


def drop_database(url: DatabaseURL) -> None:
    with _admin_connection(url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.dbname))
        )


def create_schema(url: DatabaseURL) -> None:
    with psycopg.connect(
        host=url.host, port=url.port, user=url.user, password=url.password,
        dbname=url.dbname, autocommit=True, connect_timeout=5,
    ) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(url.schema)))
