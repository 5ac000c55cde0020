"""The one place where SQLite's SQL and PostgreSQL's differ.

Our own tables (API keys, the code vault, the log's tree, the views) live
beside the events and are reached through the event store's own
connections. Their SQL is written once, in the subset both backends share,
with ``?`` for parameters and ``{key}`` for each table's name; everything
that is not shared is decided here:

* names: ``<name>`` on SQLite, ``"<schema>".ledger_<name>`` on PostgreSQL
  (index names unqualified: PostgreSQL puts them in their table's schema);
* parameters: ``?`` on SQLite, ``%s`` for psycopg;
* binary columns: ``BLOB`` or ``BYTEA`` (integers are written ``BIGINT``
  or ``INTEGER`` on both: SQLite gives both 64-bit integer affinity);
* serialising writers: a transaction-scoped advisory lock on PostgreSQL;
  on SQLite a first write, which takes its one writer lock, where
  PostgreSQL reads a row ``FOR UPDATE``;
* looking up many keys: one statement over arrays (``= ANY``, ``unnest``)
  on PostgreSQL, batches of ``?`` under SQLite's 999-parameter limit;
* ordering text by code point (``COLLATE "C"`` on PostgreSQL; SQLite's
  ``BINARY`` already is);
* cursors: a transaction of the recorder's datastore gives one, committed
  (or not) when it ends; under SQLite's the library wraps the ``sqlite3``
  cursor, whose ``row_factory`` and ``fetchmany`` the fast readers use.

Upserts (``INSERT ... ON CONFLICT ... DO UPDATE``, ``excluded``, an alias
after ``INSERT INTO``) are written the same on both and need nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

SQLITE_MAX_KEYS = 500  # parameters per SQLite statement when looking up many keys


@dataclass(frozen=True, slots=True)
class Dialect:
    """SQLite (``postgres=False``) or PostgreSQL in ``schema``."""

    postgres: bool
    schema: str = ""

    @classmethod
    def of(cls, recorder: ApplicationRecorder) -> Dialect:
        """The dialect of the store a recorder writes to."""
        postgres = type(recorder).__module__.endswith("postgres")
        datastore = recorder.datastore  # type: ignore[attr-defined]
        return cls(postgres, str(getattr(datastore, "schema", "")) if postgres else "")

    # -- names and statements ---------------------------------------------------
    def table(self, name: str) -> str:
        """The name of one of our tables, qualified as a statement needs it."""
        return f'"{self.schema}".ledger_{name}' if self.postgres else name

    def library_table(self, name: str) -> str:
        """The name of one of the event store library's tables (``name`` as
        the recorder gives it)."""
        return f'"{self.schema}"."{name}"' if self.postgres else name

    def index(self, name: str) -> str:
        """An index's name: unqualified, PostgreSQL puts it in its table's schema."""
        return f"ledger_{name}" if self.postgres else name

    def params(self, statement: str) -> str:
        """``statement`` with the driver's parameter markers for ``?``."""
        return statement.replace("?", "%s") if self.postgres else statement

    @property
    def blob(self) -> str:
        """The type of a column of bytes."""
        return "BYTEA" if self.postgres else "BLOB"

    def code_point_order(self, columns: Iterable[str], *, numeric: Iterable[str] = ()) -> str:
        """An ORDER BY list sorting text by code point on both backends
        (PostgreSQL's default collation may sort otherwise; SQLite's BINARY
        is code-point order for UTF-8); ``numeric`` columns sort as numbers."""
        if not self.postgres:
            return ", ".join(columns)
        plain = set(numeric)
        return ", ".join(c if c in plain else f'{c} COLLATE "C"' for c in columns)

    # -- serialising writers ----------------------------------------------------
    def exclusive(self, cursor: Any, lock_key: int, *, touch: str | None = None) -> None:
        """Serialise this transaction with every other that names ``lock_key``:
        PostgreSQL takes the advisory lock until the transaction ends. SQLite
        runs ``touch`` (a write that changes nothing), so that it takes its
        one writer lock -- waiting for it -- before the transaction reads
        what it will change; without ``touch``, its statements take the lock
        themselves (DDL does)."""
        if self.postgres:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        elif touch is not None:
            cursor.execute(touch)

    def select_for_update(
        self, cursor: Any, select: str, parameters: Sequence[Any], *, touch: str
    ) -> Any:
        """The one row ``select`` finds (or None), locked against concurrent
        writers until the transaction ends: ``FOR UPDATE`` on PostgreSQL; on
        SQLite ``touch`` (a write to that row that changes nothing, with the
        same parameters) first, so that it holds the writer lock before it
        reads."""
        if self.postgres:
            cursor.execute(select + " FOR UPDATE", parameters)
        else:
            cursor.execute(touch, parameters)
            cursor.execute(select, parameters)
        return cursor.fetchone()

    @property
    def reads_while_writing(self) -> bool:
        """Whether a writer may read the events (another connection of the
        pool) while it holds its lock. Not on SQLite: writers waiting for
        the file's lock hold the pool's slots, and each would wait on the
        other until the pool times out; read before taking the lock there."""
        return self.postgres

    # -- many keys at once ------------------------------------------------------
    def any_of(
        self, select: str, column: str, keys: Sequence[Any]
    ) -> Iterator[tuple[str, Sequence[Any]]]:
        """Statements (with ``?``) and parameters finding the rows of
        ``select`` (which ends where its WHERE condition goes) whose
        ``column`` is one of ``keys``: on PostgreSQL one ``= ANY`` of an
        array, on SQLite an ``IN`` list per :data:`SQLITE_MAX_KEYS` keys."""
        if self.postgres:
            yield f"{select} {column} = ANY(?)", (list(keys),)
            return
        for start in range(0, len(keys), SQLITE_MAX_KEYS):
            chunk = list(keys[start : start + SQLITE_MAX_KEYS])
            yield f"{select} {column} IN ({', '.join('?' * len(chunk))})", chunk

    def pairs_of(
        self,
        columns: Sequence[str],
        table: str,
        key: tuple[tuple[str, str], tuple[str, str]],
        keys: Sequence[tuple[Any, Any]],
        *,
        per_query: int = SQLITE_MAX_KEYS // 2,
    ) -> Iterator[tuple[str, Sequence[Any]]]:
        """Statements (with ``?``) and parameters selecting ``columns`` of
        the rows of ``table`` whose two ``key`` columns (name, PostgreSQL
        array type) equal one of ``keys``, one index search per key. On
        PostgreSQL a join on two arrays, one statement whatever the count;
        on SQLite an OR of primary-key lookups per ``per_query`` keys
        (:data:`SQLITE_MAX_KEYS` parameters), which it runs as a "multi-index OR" (a join on
        ``json_each`` is slower, ``IN (VALUES ...)`` a full scan)."""
        (first, first_type), (second, second_type) = key
        if self.postgres:
            yield (
                f"SELECT {', '.join('n.' + c for c in columns)}"  # noqa: S608 - ours
                f" FROM unnest(?::{first_type}[], ?::{second_type}[]) AS k({first}, {second}) "
                f"JOIN {table} n ON n.{first} = k.{first} AND n.{second} = k.{second}",
                ([a for a, _ in keys], [b for _, b in keys]),
            )
            return
        for start in range(0, len(keys), per_query):
            chunk = keys[start : start + per_query]
            where = " OR ".join([f"({first} = ? AND {second} = ?)"] * len(chunk))
            yield (
                f"SELECT {', '.join(columns)} FROM {table} WHERE {where}",  # noqa: S608 - ours
                [part for pair in chunk for part in pair],
            )


SQLITE = Dialect(postgres=False)


@dataclass(frozen=True)
class Tables:
    """A set of our tables in one store's dialect: ``{key}`` in a statement
    is the name of the table ``key`` stands for."""

    dialect: Dialect
    names: Mapping[str, str] = field(default_factory=dict)  # key -> qualified name

    @classmethod
    def named(cls, dialect: Dialect, **tables: str) -> Tables:
        """``tables``: key -> table name, e.g. ``t="api_keys"``."""
        return cls(dialect, {key: dialect.table(name) for key, name in tables.items()})

    def sql(self, statement: str) -> str:
        """``statement`` with table names and the driver's parameter markers."""
        return self.dialect.params(statement.format_map(self.names))


def plain_cursor(cursor: Any) -> Any:
    """The DB-API cursor under the library's (SQLite: the ``sqlite3`` cursor,
    which has ``fetchmany`` and a ``row_factory``; psycopg's as it is)."""
    return getattr(cursor, "sqlite_cursor", cursor)


def tuples(cursor: Any, statement: str, parameters: Sequence[Any]) -> list[Any]:
    """The rows of a SELECT as plain tuples (from SQLite without building a
    ``sqlite3.Row`` each: for readers of whole tables)."""
    plain = getattr(cursor, "sqlite_cursor", None)
    if plain is not None:
        plain.row_factory = None
    cursor.execute(statement, parameters)
    rows: list[Any] = cursor.fetchall()
    return rows if plain is not None else [tuple(r.values()) for r in rows]


class TableStore:
    """Our tables in the store a recorder writes to, reached through its
    own connections (so they live in the same file or schema, and share its
    transaction machinery)."""

    def __init__(self, recorder: ApplicationRecorder, **tables: str) -> None:
        """``tables``: key -> table name, e.g. ``t="api_keys"``."""
        self.recorder = recorder
        self._datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        self.dialect = Dialect.of(recorder)
        self.tables = Tables.named(self.dialect, **tables)

    def _sql(self, statement: str) -> str:
        return self.tables.sql(statement)

    @contextmanager
    def _cursor(self, *, commit: bool) -> Iterator[Any]:
        """A cursor in a transaction of its own, committed at the end if
        ``commit`` (and nothing went wrong), else rolled back."""
        with self._datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _create(self, lock_key: int, *statements: str) -> None:
        """Run CREATE statements (with ``{key}`` names) in one transaction,
        serialised by ``lock_key``: concurrent CREATE TABLE IF NOT EXISTS can
        race on PostgreSQL."""
        with self._cursor(commit=True) as cursor:
            self.dialect.exclusive(cursor, lock_key)
            for statement in statements:
                cursor.execute(self._sql(statement))
