"""Tables of our own beside the events, reached through the event store's
own connections (so they live in the same file or schema, and the same
transaction machinery): API keys, the code vault.

A table is named ``<name>`` on SQLite and ``"<schema>".ledger_<name>`` on
PostgreSQL; statements are written with ``{placeholder}`` for each table and
``?`` for parameters, and adapted to the backend by :meth:`SideTables._sql`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.utils import Environment

from ledger.store.database import APPLICATION_NAME, DatabaseURL


class SideTables:
    def __init__(self, recorder: ApplicationRecorder, **tables: str) -> None:
        """``tables``: placeholder -> table name, e.g. ``t="api_keys"``."""
        self._datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        self._postgres = type(recorder).__module__.endswith("postgres")
        schema = getattr(self._datastore, "schema", "")
        self._tables = {
            "{" + key + "}": f'"{schema}".ledger_{name}' if self._postgres else name
            for key, name in tables.items()
        }

    def _sql(self, statement: str) -> str:
        for placeholder, table in self._tables.items():
            statement = statement.replace(placeholder, table)
        return statement.replace("?", "%s") if self._postgres else statement

    @contextmanager
    def _cursor(self, *, commit: bool) -> Iterator[Any]:
        with self._datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _create(self, lock_key: int, *statements: str) -> None:
        """Run CREATE statements in one transaction; on PostgreSQL under an
        advisory lock, since concurrent CREATE TABLE IF NOT EXISTS can race."""
        with self._cursor(commit=True) as cursor:
            if self._postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
            for statement in statements:
                cursor.execute(self._sql(statement))


@contextmanager
def open_recorder(url: DatabaseURL, *, create: bool) -> Iterator[ApplicationRecorder]:
    """The store's recorder without an application around it, for the CLI's
    work on side tables."""
    env = Environment(APPLICATION_NAME, url.event_store_env(create_tables=create))
    factory: Any = InfrastructureFactory.construct(env)
    try:
        yield factory.application_recorder()
    finally:
        factory.close()
