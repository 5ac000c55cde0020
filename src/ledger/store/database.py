"""Where the events live: one database URL, turned into the event store's
settings.

``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a bare
file path select the embedded SQLite store; ``postgresql://user:pw@host:port/db``
selects PostgreSQL through psycopg 3 with a connection pool. This module
imports no domain code, so the verifier can read stores through it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

APPLICATION_NAME = "ledger"
DEFAULT_URL = "sqlite:///ledger.db"
# Seconds a request may wait for the database before it is answered 503
# database-unavailable (PostgreSQL; see ledger.store.postgres).
DEFAULT_DATABASE_TIMEOUT = 3.0


class DatabaseURLError(ValueError):
    """The database URL cannot be understood."""


@dataclass(frozen=True)
class DatabaseURL:
    backend: str  # "sqlite" or "postgresql"
    path: str = ""  # sqlite file
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = "public"
    pool_size: int = 10
    max_overflow: int = 20
    timeout: float = DEFAULT_DATABASE_TIMEOUT  # the longest wait for a connection

    @classmethod
    def parse(cls, url: str | os.PathLike[str] | None) -> DatabaseURL:
        text = os.fspath(url) if url is not None else DEFAULT_URL
        if not text:
            raise DatabaseURLError("the database URL is empty")
        if text.startswith(("postgresql://", "postgres://")):
            return cls._parse_postgres(text)
        if text.startswith("sqlite://"):
            if not text.startswith("sqlite:///") or len(text) == len("sqlite:///"):
                raise DatabaseURLError(
                    f"{text!r}: write sqlite:///relative/path.db or sqlite:////absolute/path.db"
                )
            text = text[len("sqlite:///") :]
        elif "://" in text:
            raise DatabaseURLError(
                f"{text!r}: unsupported scheme (use sqlite:/// or postgresql://)"
            )
        return cls(backend="sqlite", path=text)

    @classmethod
    def _parse_postgres(cls, text: str) -> DatabaseURL:
        parts = urlsplit(text)
        query = parse_qs(parts.query)
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise DatabaseURLError(f"{text!r}: name the database, e.g. postgresql://host/ledger")
        host = parts.hostname or query.get("host", ["127.0.0.1"])[0]
        try:
            port = parts.port or 5432
            pool_size = int(query.get("pool_size", ["10"])[0])
            max_overflow = int(query.get("max_overflow", ["20"])[0])
        except ValueError as error:
            raise DatabaseURLError(f"{text!r}: {error}") from None
        schema = query.get("schema", ["public"])[0]
        if not schema.isidentifier():
            raise DatabaseURLError(f"{text!r}: schema must be a plain identifier")
        return cls(
            backend="postgresql",
            host=host,
            port=port,
            schema=schema,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=dbname,
            pool_size=pool_size,
            max_overflow=max_overflow,
        )

    def event_store_env(self, *, create_tables: bool = True) -> dict[str, str]:
        """Settings for the ``eventsourcing`` infrastructure factory.

        Keys are given with the application-name prefix too, because the
        library looks those up first and they would otherwise be shadowed by
        anything of that name in the process environment.
        """
        env = {"CREATE_TABLE": "y" if create_tables else "n"}
        if self.backend == "sqlite":
            env |= {
                "PERSISTENCE_MODULE": "ledger.store.sqlitefiles:PrivateSQLiteFactory",
                "SQLITE_DBNAME": self.path,
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        else:
            env |= {
                # eventsourcing.postgres with a pool that fails fast and
                # recovers fast (and no retries of its own): see store.postgres
                "PERSISTENCE_MODULE": "ledger.store.postgres:LedgerPostgresFactory",
                "DATABASE_TIMEOUT": str(self.timeout),
                "POSTGRES_DBNAME": self.dbname,
                "POSTGRES_HOST": self.host,
                "POSTGRES_PORT": str(self.port),
                "POSTGRES_USER": self.user,
                "POSTGRES_PASSWORD": self.password,
                "POSTGRES_POOL_SIZE": str(self.pool_size),
                "POSTGRES_MAX_OVERFLOW": str(self.max_overflow),
                "POSTGRES_CONNECT_TIMEOUT": str(max(2, math.ceil(self.timeout))),
                "POSTGRES_LOCK_TIMEOUT": "10",
                "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
                "POSTGRES_PRE_PING": "y",
                "POSTGRES_SCHEMA": self.schema,
            }
        prefix = APPLICATION_NAME.upper() + "_"
        return env | {prefix + key: value for key, value in env.items()}

    def exists(self) -> bool:
        """Whether the store is there to be read (SQLite: the file exists)."""
        if self.backend == "sqlite":
            return Path(self.path).is_file()
        return True

    def display(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.path}"
        schema = "" if self.schema == "public" else f"?schema={self.schema}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}{schema}"
