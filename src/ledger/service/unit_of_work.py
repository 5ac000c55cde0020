"""A unit of work: the aggregates one transaction reads and changes.

Within a unit of work an aggregate is loaded once and every command of the
batch sees the same in-memory object, so a batch of sales on one stock
applies them one after another, exactly as if they had run alone. Commit
stores every pending event in one ``put`` -- one transaction -- ordered by
aggregate in first-touch order.

**Optimistic first attempts.** A command's first attempt trusts what this
process last committed (the :class:`HotAggregates` cache) and assumes that
aggregates it would create -- its idempotency record, a buyer's first
allowance, a fresh serial's unit -- do not exist yet, without asking the
database. That is safe because the database is the judge: a stale version or
an id that already exists makes the insert fail with ``IntegrityError``, and
the retry runs *careful*: it drops the cached copies and reads everything
from the store. The common case then costs one transaction and no reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from copy import deepcopy
from typing import TypeVar
from uuid import UUID

from ledger.domain.errors import InvalidInputError
from ledger.domain.model import Aggregate, Event, events_made
from ledger.store.eventstore import AggregateNotFoundError, EventStore

A = TypeVar("A", bound=Aggregate)


class HotAggregates:
    """The aggregates this process committed last, by id (LRU, thread-safe).

    Entries are never mutated: readers get deep copies.
    """

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[int, Aggregate] = OrderedDict()  # by the id's integer
        self._lock = threading.Lock()

    def copy_of(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            found = self._entries.get(aggregate_id.int)
            if found is None:
                return None
            self._entries.move_to_end(aggregate_id.int)
        return deepcopy(found)

    def keep(self, aggregates: list[Aggregate]) -> None:
        if self._maxsize <= 0:
            return
        with self._lock:
            for aggregate in aggregates:
                self._entries[aggregate.id.int] = aggregate
                self._entries.move_to_end(aggregate.id.int)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)

    def forget(self, aggregate_ids: list[int]) -> None:
        """(By the ids' integers.)"""
        with self._lock:
            for aggregate_id in aggregate_ids:
                self._entries.pop(aggregate_id, None)


class UnitOfWork:
    def __init__(self, store: EventStore, hot: HotAggregates, *, careful: bool) -> None:
        self._store = store
        self._hot = hot
        self.careful = careful
        # Keyed by the ids' integers: hashing a UUID runs Python code, and a
        # batch of sales looks ids up thousands of times.
        self._seen: dict[int, Aggregate | None] = {}
        self._order: list[Aggregate] = []
        self._cached: dict[int, int] = {}  # aggregates taken from the hot cache: version

    def get(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate (None if it does not exist)."""
        if aggregate_id.int not in self._seen:
            found = None if self.careful else self._hot.copy_of(aggregate_id)
            if found is not None:
                self._cached[aggregate_id.int] = found.version
            else:
                try:
                    found = self._store.load(aggregate_id)
                except AggregateNotFoundError:
                    found = None
            self._note(aggregate_id, found)
        return self._typed(kind, aggregate_id)

    def get_or_assume_new(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """Like :meth:`get`, but an optimistic attempt takes an id it has not
        committed itself for one that does not exist yet (see module doc)."""
        if self.careful:
            return self.get(kind, aggregate_id)
        if aggregate_id.int not in self._seen:
            found = self._hot.copy_of(aggregate_id)
            if found is not None:
                self._cached[aggregate_id.int] = found.version
            self._note(aggregate_id, found)
        return self._typed(kind, aggregate_id)

    def stored(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """Read the store itself, whatever this unit of work assumed so far."""
        if not self._store.exists(aggregate_id):  # the common case: cheap
            return None
        try:
            found = self._store.load(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(found, kind):
            raise InvalidInputError("id", f"{aggregate_id} is not a {kind.__name__}")
        return found

    def is_current(self, aggregate_id: UUID | None) -> bool:
        """Whether what this unit of work took from the hot cache for
        ``aggregate_id`` is still the stored state (another process may have
        written since). One query, only for a cached aggregate."""
        version = self._cached.get(aggregate_id.int) if aggregate_id is not None else None
        if version is None or aggregate_id is None:
            return True
        current = self._store.is_current(aggregate_id, version)
        if current:  # asked once per unit of work: it will not change its answer
            del self._cached[aggregate_id.int]
        return current

    def seen(self, aggregate_id: UUID | None) -> Aggregate | None:
        """The aggregate as this unit of work has it (None if never read)."""
        return self._seen.get(aggregate_id.int) if aggregate_id is not None else None

    def add(self, aggregate: Aggregate) -> None:
        """Take in a newly created aggregate."""
        if self._seen.get(aggregate.id.int) is not None:
            raise AssertionError(f"aggregate {aggregate.id} is already in this unit of work")
        self._seen[aggregate.id.int] = aggregate
        self._order.append(aggregate)

    def pending_events(self) -> int:
        """A count that moves whenever an event is triggered in this thread
        (decisions run in the thread that owns the unit of work): compare
        it before and after a decision to see whether it changed anything."""
        return events_made()

    def commit(self) -> int:
        """Store all pending events in one transaction; raises the store's
        ``IntegrityError`` (nothing stored) if any version is taken."""
        events: list[Event] = []
        changed: list[Aggregate] = []
        for aggregate in self._order:
            pending = aggregate.collect_events()
            if pending:
                events.extend(pending)
                changed.append(aggregate)
        if events:
            try:
                self._store.append(events)
            except Exception:
                self.forget()
                raise
            self._hot.keep(changed)
        return len(events)

    def forget(self) -> None:
        """Drop every aggregate this unit of work touched from the hot cache."""
        self._hot.forget(list(self._seen))

    def _note(self, aggregate_id: UUID, found: Aggregate | None) -> None:
        self._seen[aggregate_id.int] = found
        if found is not None:
            self._order.append(found)

    def _typed(self, kind: type[A], aggregate_id: UUID) -> A | None:
        found = self._seen[aggregate_id.int]
        if found is not None and not isinstance(found, kind):
            raise InvalidInputError("id", f"{aggregate_id} is not a {kind.__name__}")
        return found
