"""Do the live views equal a fresh replay of the events?

The auditor's check (``ledger verify --db``) and the tests' after every
stateful run: replay the store, up to the position the live views have
reached, into a scratch SQLite file with the same projector, then compare
every view table row by row, streaming both sides in key order. The store
is only read.

Whatever the live views hold, the comparison ends with a report: a row of
another type, a missing table or column, a position that is no number, an
event the projector cannot apply -- each is a located problem (table and
row, or the event's position), never an exception.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.domain.errors import InvariantError
from ledger.projections.projector import Changes, Projector, Record
from ledger.projections.store import BATCH_EVENTS, ProjectionStore
from ledger.projections.tables import TABLES, create_statements, view_tables
from ledger.store.dialect import SQLITE, Tables, plain_cursor
from ledger.store.sqlitefiles import create_private

# The sort key of each compared table (its primary key).
KEYS = {
    "goods": "good_id",
    "channels": "channel",
    "good_creators": "creator, good_id",
    "stock": "stock_id",
    "units": "unit_id",
    "unit_events": "unit_id, version",
    "lineage": "master_id, variant_id",
    "royalties": "recipient, role, reference, unit_id",
    "settlement": "channel, day, currency",
    "velocity": "stock_id, minute",
    "holds": "hold_id",
    "pools": "stock_id, channel",
    "waitlist": "entry_id",
    "audit": "position",
}
if set(KEYS) != set(TABLES) - {"position", "meta"}:
    raise InvariantError("every view table needs a comparison key")


@dataclass
class ReplayReport:
    position: int = 0
    events: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)  # first few, one line each
    mismatched_rows: int = 0
    # What could not be read or replayed at all, located, one line each.
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mismatched_rows == 0 and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "position": self.position,
            "events": self.events,
            "rows": self.rows,
            "mismatched_rows": self.mismatched_rows,
            "differences": self.differences,
            "problems": self.problems,
        }


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def views_present(live: ProjectionStore) -> bool:
    """Whether the store has views at all (their position table is there),
    however damaged their rows."""
    try:
        with live.cursor(commit=False) as cursor:
            cursor.execute(live.tables.sql("SELECT count(*) AS n FROM {position}"))
            cursor.fetchall()
    except Exception:
        return False
    return True


def compare_with_replay(
    live: ProjectionStore,
    *,
    progress: Callable[[int], None] | None = None,
    max_differences: int = 20,
) -> ReplayReport:
    report = ReplayReport()
    try:
        report.position = live.position().position
    except Exception as error:  # the row is there but holds no position
        report.problems.append(
            f"position [id=1]: the views' position cannot be read "
            f"({_why(error)}); nothing to compare up to"
        )
        return report
    with tempfile.TemporaryDirectory(prefix="ledger-replay-") as scratch:
        path = Path(scratch) / "views.db"
        create_private(str(path))  # a replay of the views: the store's data
        fresh = sqlite3.connect(path, isolation_level=None)
        fresh.row_factory = sqlite3.Row
        try:
            fresh.execute("PRAGMA journal_mode=OFF")
            fresh.execute("PRAGMA synchronous=OFF")
            scratch_tables = view_tables(SQLITE)
            for statement in create_statements(scratch_tables):
                fresh.execute(statement)
            projector = Projector(scratch_tables, live.projector.bands)
            after = 0
            while after < report.position:
                try:
                    records = [
                        r for r in live.read(after, BATCH_EVENTS) if r.position <= report.position
                    ]
                except Exception as error:
                    report.problems.append(
                        f"events after position {after} cannot be read for "
                        f"the replay ({_why(error)})"
                    )
                    break
                if not records:
                    break
                events = _apply(projector, fresh, records, report)
                report.events += events
                after = records[-1].position
                if progress is not None:
                    progress(events)
            for table, key in KEYS.items():
                try:
                    _compare(table, key, live, fresh, scratch_tables, report, max_differences)
                except Exception as error:  # no such table or column, say
                    report.problems.append(f"{table}: the view cannot be compared ({_why(error)})")
        finally:
            fresh.close()
    return report


def _apply(
    projector: Projector, fresh: sqlite3.Connection, records: list[Record], report: ReplayReport
) -> int:
    """Apply a batch to the scratch views; if the projector cannot, apply
    its events one by one and report each it cannot apply, by position."""
    changes = Changes()
    try:
        fresh.execute("BEGIN")
        projector.apply(fresh.cursor(), records, changes)
        fresh.execute("COMMIT")
    except Exception:
        fresh.execute("ROLLBACK")
    else:
        return changes.events
    events = 0
    for record in records:
        one = Changes()
        try:
            fresh.execute("BEGIN")
            projector.apply(fresh.cursor(), [record], one)
            fresh.execute("COMMIT")
        except Exception as error:
            fresh.execute("ROLLBACK")
            report.problems.append(
                f"event at position {record.position} ({record.type} v{record.version} of "
                f"{record.aggregate_id}) cannot be replayed ({_why(error)})"
            )
        events += 1
    return events


INTEGER_KEYS = {"version", "position"}


def _order(key: str, tables: Tables) -> str:
    """ORDER BY in code-point order on both backends, so the two sides can
    be merged by key in Python."""
    columns = [c.strip() for c in key.split(",")]
    return tables.dialect.code_point_order(columns, numeric=INTEGER_KEYS)


def _rows(cursor: Any, statement: str, params: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
    cursor.execute(statement, params)
    cursor = plain_cursor(cursor)  # the library's wrapper has no fetchmany
    while True:
        batch = cursor.fetchmany(2_000)
        if not batch:
            return
        yield from (dict(row) for row in batch)


def _sort_key(value: Any) -> tuple[int, Any]:
    """A key column's value as SQLite orders it -- NULL, numbers, text,
    blobs -- so that a live row of another type (a damaged view) is merged
    in the order the database returned it, never compared with a number."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, bytes(value))


def _compare(
    table: str,
    key: str,
    live: ProjectionStore,
    fresh: sqlite3.Connection,
    tables: Tables,
    report: ReplayReport,
    max_differences: int,
) -> None:
    columns = [c.strip() for c in key.split(",")]
    count = 0

    def differ(where: dict[str, Any], what: str) -> None:
        report.mismatched_rows += 1
        if len(report.differences) < max_differences:
            at = ", ".join(f"{c}={where[c]}" for c in columns)
            report.differences.append(f"{table} [{at}]: {what}")

    with live.cursor(commit=False) as live_cursor:
        live_rows = _rows(
            live_cursor,
            live.tables.sql(f"SELECT * FROM {{{table}}} ORDER BY {_order(key, live.tables)}"),  # noqa: S608
        )
        fresh_rows = _rows(
            fresh.cursor(),
            tables.sql(f"SELECT * FROM {{{table}}} ORDER BY {_order(key, tables)}"),  # noqa: S608
        )
        a, b = next(live_rows, None), next(fresh_rows, None)
        while a is not None or b is not None:
            count += 1
            ka = tuple(_sort_key(a[c]) for c in columns) if a is not None else None
            kb = tuple(_sort_key(b[c]) for c in columns) if b is not None else None
            if a is not None and (kb is None or (ka is not None and ka < kb)):
                differ(a, "in the live view but not in the replay")
                a = next(live_rows, None)
            elif b is not None and (ka is None or (kb is not None and kb < ka)):
                differ(b, "missing from the live view")
                b = next(fresh_rows, None)
            else:
                if a is None or b is None:
                    raise InvariantError("a, b unset")
                if a != b:
                    differ(
                        a,
                        "; ".join(
                            f"{c}: live {a.get(c)!r}, replay {b.get(c)!r}"
                            for c in b
                            if a.get(c) != b.get(c)
                        ),
                    )
                a, b = next(live_rows, None), next(fresh_rows, None)
    report.rows[table] = count
