"""A unit of work: the aggregates one transaction reads and changes.

Within a unit of work an aggregate is loaded once and every command of the
batch sees the same in-memory object, so a batch of sales on one stock
applies them one after another, exactly as if they had run alone. Commit
stores every pending event in one ``put`` -- one transaction -- ordered by
aggregate in first-touch order.
"""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from ledger.domain.errors import InvalidInputError
from ledger.domain.model import Aggregate, Event
from ledger.store.eventstore import AggregateNotFoundError, EventStore

A = TypeVar("A", bound=Aggregate)


class UnitOfWork:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._seen: dict[UUID, Aggregate | None] = {}
        self._order: list[Aggregate] = []

    def get(self, kind: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id in self._seen:
            found = self._seen[aggregate_id]
        else:
            try:
                found = self._store.load(aggregate_id)
            except AggregateNotFoundError:
                found = None
            self._seen[aggregate_id] = found
            if found is not None:
                self._order.append(found)
        if found is not None and not isinstance(found, kind):
            raise InvalidInputError("id", f"{aggregate_id} is not a {kind.__name__}")
        return found

    def add(self, aggregate: Aggregate) -> None:
        """Take in a newly created aggregate."""
        if self._seen.get(aggregate.id) is not None:
            raise AssertionError(f"aggregate {aggregate.id} is already in this unit of work")
        self._seen[aggregate.id] = aggregate
        self._order.append(aggregate)

    def pending_events(self) -> int:
        return sum(len(a._pending) for a in self._order)

    def commit(self) -> int:
        events: list[Event] = []
        for aggregate in self._order:
            events.extend(aggregate.collect_events())
        if events:
            self._store.append(events)
        return len(events)
