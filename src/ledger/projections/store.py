"""The views' tables in the event store's database, updated exactly once.

Each batch of events is applied in one transaction that also moves the
views' recorded position, under a lock on that position row: a crash
between events and views loses nothing (the views resume from the
position), and two runners on one database (several API processes on one
PostgreSQL) never apply an event twice -- the second finds the position
already past its batch and skips what was done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from ledger.projections.bands import BandPolicy
from ledger.projections.projector import Changes, Projector, Record
from ledger.projections.tables import (
    TABLES,
    VIEWS_VERSION,
    create_statements,
    drop_statements,
)
from ledger.store.dialect import TableStore

_DDL_LOCK_KEY = 0x70726F6A  # "proj": advisory lock id for creating/dropping views on PostgreSQL
BATCH_EVENTS = 1_000


@dataclass(frozen=True)
class ViewPosition:
    position: int  # the last store position applied
    events: int  # events applied since the views were (re)built
    last_event_at: str | None  # timestamp of the last event applied
    applied_at: str | None  # wall-clock time that batch committed


class ProjectionStore(TableStore):
    def __init__(
        self, recorder: ApplicationRecorder, *, bands: BandPolicy | None = None, create: bool = True
    ) -> None:
        super().__init__(recorder, **{name: f"proj_{name}" for name in TABLES})
        self.projector = Projector(self.tables, bands)
        self.seen_position = 0  # the views' position as last read (by any runner)
        if create:
            self.create_tables()

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        """A cursor in a transaction of its own (statements: ``self.tables.sql``)."""
        with self._cursor(commit=commit) as cursor:
            yield cursor

    def _q(self, statement: str) -> str:
        return self.tables.sql(statement)

    def _ddl_lock(self, cursor: Any) -> None:
        # concurrent CREATE TABLE IF NOT EXISTS can race on PostgreSQL
        self.dialect.exclusive(cursor, _DDL_LOCK_KEY)

    def create_tables(self) -> None:
        """Create the views, or rebuild them from zero (empty, position 0)
        if they were laid out by another version."""
        with self.cursor(commit=True) as cursor:
            self._ddl_lock(cursor)
            self._create_views(cursor)
            cursor.execute(self._q("SELECT version FROM {meta} WHERE id = 1"))
            row = cursor.fetchone()
            if row is None or int(row["version"]) != VIEWS_VERSION:
                for statement in drop_statements(self.tables):
                    cursor.execute(statement)
                self._create_views(cursor)
                self._stamp(cursor)

    def _create_views(self, cursor: Any) -> None:
        for statement in create_statements(self.tables):
            cursor.execute(statement)
        cursor.execute(
            self._q(
                "INSERT INTO {position} (id, position, events, last_event_at, applied_at) "
                "VALUES (1, 0, 0, NULL, NULL) ON CONFLICT (id) DO NOTHING"
            )
        )

    def _stamp(self, cursor: Any) -> None:
        cursor.execute(self._q("DELETE FROM {meta}"))
        cursor.execute(self._q("INSERT INTO {meta} (id, version) VALUES (1, ?)"), (VIEWS_VERSION,))

    def version(self) -> int | None:
        """The layout version of the views in the store (None: none there)."""
        try:
            with self.cursor(commit=False) as cursor:
                cursor.execute(self._q("SELECT version FROM {meta} WHERE id = 1"))
                row = cursor.fetchone()
        except Exception:
            return None
        return int(row["version"]) if row is not None else None

    def reset(self) -> None:
        """Drop every view and start again from position 0, in one transaction."""
        with self.cursor(commit=True) as cursor:
            self._ddl_lock(cursor)
            for statement in drop_statements(self.tables):
                cursor.execute(statement)
            self._create_views(cursor)
            self._stamp(cursor)

    def exists(self) -> bool:
        try:
            self.position()
        except Exception:
            return False
        return True

    def position(self) -> ViewPosition:
        with self.cursor(commit=False) as cursor:
            cursor.execute(
                self._q(
                    "SELECT position, events, last_event_at, applied_at"
                    " FROM {position} WHERE id = 1"
                )
            )
            row = cursor.fetchone()
        if row is None:
            return ViewPosition(0, 0, None, None)
        return ViewPosition(
            int(row["position"]), int(row["events"]), row["last_event_at"], row["applied_at"]
        )

    def store_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def read(self, after: int, limit: int) -> list[Record]:
        page = self.recorder.select_notifications(start=after + 1, limit=limit)
        return [
            Record(
                n.id, str(UUID(str(n.originator_id))), n.originator_version, n.topic, bytes(n.state)
            )
            for n in page
        ]

    def apply_next(self, now: Callable[[], str], limit: int = BATCH_EVENTS) -> Changes | None:
        """Apply the next batch of events; None when there is nothing new."""
        start = self.position().position
        self.seen_position = start
        records = self.read(start, limit)
        if not records:
            return None
        changes = Changes()
        with self.cursor(commit=True) as cursor:
            row = self.dialect.select_for_update(
                cursor,
                self._q("SELECT position FROM {position} WHERE id = 1"),
                (),
                touch=self._q("UPDATE {position} SET id = 1 WHERE id = 1"),
            )
            current = int(row["position"])
            if current < start:
                return Changes(position=current)  # views were reset meanwhile: read again
            fresh = [r for r in records if r.position > current]
            if not fresh:
                return Changes(position=current)  # another runner applied this batch
            self.projector.apply(cursor, fresh, changes)
            changes.first_event_at = _timestamp(fresh[0])
            changes.last_event_at = _timestamp(fresh[-1])
            cursor.execute(
                self._q(
                    "UPDATE {position} SET position = ?, events = events + ?, last_event_at = ?, "
                    "applied_at = ? WHERE id = 1"
                ),
                (changes.position, changes.events, changes.last_event_at, now()),
            )
        return changes


def _timestamp(record: Record) -> str | None:
    # The state is canonical JSON: "timestamp" is its last member before the
    # closing brace, so it can be sliced out without parsing the event.
    state = record.state
    at = state.rfind(b'"timestamp":"')
    return state[at + 13 : at + 13 + 27].decode() if at >= 0 else None
