"""The stored rows, read fast: from SQLite as plain columns, each id
formatted from its 32 hex digits; from any other store through
:class:`~ledger.store.records.RecordReader`. A value the library would stop
at is yielded as stored, for the verifier to report at its row."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from ledger.store.records import RecordReader
from ledger.verify.codec import splice

Row = tuple[int, str, int, str, bytes]  # position, aggregate id, version, type, state
_PAGE = 2_000  # RecordReader's page
_HEX_DIGITS = "0123456789abcdef"


def read_rows(reader: RecordReader) -> Iterator[Row]:
    """The stored rows as ``reader`` yields them -- same pages, same values
    -- but read faster from SQLite: plain columns, and each id formatted
    from its 32 hex digits rather than through a UUID. Where the library
    would stop (an id that is no UUID, a state that is no bytes, text that
    is no UTF-8), this reads on and yields the value as stored, for the
    verifier to report at its row."""
    recorder: Any = reader.recorder
    datastore: Any = getattr(recorder, "datastore", None)
    if not (
        type(recorder).__module__ == "eventsourcing.sqlite"
        and getattr(datastore, "originator_id_type", None) == "uuid"
        and isinstance(getattr(recorder, "events_table_name", None), str)
    ):
        for row in reader:
            yield row.position, row.aggregate_id, row.version, row.event_type, row.state
        return
    table = recorder.events_table_name
    convert = recorder.convert_originator_id
    formatted: dict[str, str] = {}  # ids recur (a stock's in each of its events)
    start = 1
    while True:
        fetched = _fetch_page(datastore, table, start)
        if not fetched:
            return
        if len(formatted) > 8_192:
            formatted.clear()
        # As the reader: a page's ids are converted before any of its rows is
        # used, each state as its row is.
        for item in _page(fetched, formatted, convert):
            state = item[4]
            if type(state) is bytes or not isinstance(state, (bytearray, memoryview)):
                yield item  # a state that is no bytes at all: the verifier says so
            else:
                yield (*item[:4], bytes(state))
        start = fetched[-1][0] + 1


def _fetch_page(datastore: Any, table: str, start: int) -> list[tuple[Any, ...]]:
    """A page of stored rows from ``start``, as the library's
    select_notifications reads them, less the columns it does not need."""
    statement = (
        "SELECT rowid, originator_id, originator_version, topic, state FROM "  # noqa: S608
        f"{table} WHERE rowid>=? ORDER BY rowid LIMIT ?"
    )
    with datastore.transaction(commit=False) as cursor:
        plain = getattr(cursor, "sqlite_cursor", None)
        if plain is not None:
            plain.row_factory = None  # tuples, not sqlite3.Row: the same values
        try:
            cursor.execute(statement, (start, _PAGE))
            fetched: list[tuple[Any, ...]] = cursor.fetchall()
        except sqlite3.OperationalError:
            # A text column that is no UTF-8 fails the whole page: read
            # its rows one by one, such a value as its bytes.
            fetched = _rows_one_by_one(cursor, table, start)
    return fetched


def _page(
    fetched: list[tuple[Any, ...]], formatted: dict[str, str], convert: Callable[[Any], Any]
) -> list[Row]:
    """A page's rows, each id as the reader gives it: formatted from its 32
    hex digits (remembered in ``formatted``), else converted, else as stored
    (no UUID: the verifier says so, and reads on)."""
    page: list[Row] = []
    for position, originator_id, version, event_type, state in fetched:
        aggregate_id = formatted.get(originator_id) if type(originator_id) is str else None
        if aggregate_id is None:
            if (
                type(originator_id) is str
                and len(originator_id) == 32
                and not originator_id.strip(_HEX_DIGITS)
            ):
                h = originator_id  # what str(UUID(h)) gives, without the UUID
                aggregate_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                formatted[h] = aggregate_id
            else:
                try:
                    aggregate_id = str(convert(originator_id))
                except (ValueError, TypeError, AttributeError):
                    aggregate_id = originator_id
        page.append((position, aggregate_id, version, event_type, state))
    return page


def _rows_one_by_one(cursor: Any, table: str, start: int) -> list[tuple[Any, ...]]:
    """A page of stored rows, each read alone; a text value that is no
    UTF-8 is read as its bytes (which no id, type or version is)."""
    cursor.execute(
        f"SELECT rowid FROM {table} WHERE rowid>=? ORDER BY rowid LIMIT ?",  # noqa: S608
        (start, _PAGE),
    )
    rowids = [row[0] for row in cursor.fetchall()]
    names = ("originator_id", "originator_version", "topic", "state")
    columns = ", ".join(
        f"typeof({c}), CASE WHEN typeof({c})='text' THEN CAST({c} AS BLOB) ELSE {c} END"
        for c in names
    )
    rows = []
    for rowid in rowids:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE rowid=?", (rowid,))  # noqa: S608
        found = cursor.fetchone()
        if found is None:
            continue
        values: list[Any] = [rowid]
        for kind, stored in zip(found[::2], found[1::2], strict=True):
            value = stored
            if kind == "text":
                with contextlib.suppress(UnicodeDecodeError):
                    value = stored.decode("utf-8")
            values.append(value)
        rows.append(tuple(values))
    return rows


def record_of(aggregate_id: Any, version: Any, event_type: Any, state: Any) -> bytes:
    """The record bytes of a row for the log's tree: the splice, or -- for
    a row whose columns are not even of their types (reported as such) --
    bytes that stand for it."""
    try:
        return splice(aggregate_id, version, event_type, state)
    except Exception:
        return repr((aggregate_id, version, event_type, state)).encode()


def why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
