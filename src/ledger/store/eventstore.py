"""The ``eventsourcing`` application that stores the ledger's events.

Its mapper stores each event's canonical ``state`` bytes verbatim (see
:mod:`ledger.domain.model`), with the event type as the topic. Nothing else
is transcoded, compressed or encrypted: the stored bytes are the hashed bytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    InternalError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    StoredEvent,
)

from ledger.domain import canonical
from ledger.domain.actor import Actor
from ledger.domain.errors import ChainError
from ledger.domain.model import EVENT_TYPES, Aggregate, Event, parse_timestamp
from ledger.store.availability import DatabaseUnavailableError, unavailable_reason
from ledger.store.database import APPLICATION_NAME, DatabaseURL
from ledger.store.dialect import Dialect

__all__ = [
    "AggregateNotFoundError",
    "ChainedEventMapper",
    "EventStore",
    "IntegrityError",
    "InterfaceError",
    "OperationalError",
]


class ChainedEventMapper(Mapper[UUID]):
    def __init__(self) -> None:
        super().__init__(transcoder=JSONTranscoder())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if not isinstance(domain_event, Event):
            raise TypeError(f"not a ledger event: {type(domain_event).__name__}")
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=domain_event.TYPE,
            state=domain_event.state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        where = f"{stored_event.originator_id} v{stored_event.originator_version}"
        event_class = EVENT_TYPES.get(stored_event.topic)
        if event_class is None:
            raise ChainError(f"{where}: unknown event type {stored_event.topic!r}")
        state = bytes(stored_event.state)
        # Pair assertion: what we hash on write must be what we read back.
        if not canonical.is_canonical(state):
            raise ChainError(f"{where}: stored state is not canonical JSON")
        try:
            data = orjson.loads(state)
            event = event_class(
                originator_id=UUID(str(stored_event.originator_id)),
                originator_version=stored_event.originator_version,
                timestamp=parse_timestamp(data["timestamp"]),
                prev_hash=data["prev_hash"],
                **data["payload"],
            )
            recorded_by = data.get("recorded_by")
            if recorded_by is not None:
                event.stamp(Actor.from_member(recorded_by))
        except (KeyError, TypeError, ValueError) as error:
            raise ChainError(f"{where}: stored state does not decode: {error}") from None
        event.attach_stored_state(state)
        return event


class EventStore(Application[UUID]):
    """One per process: the event store behind :class:`ledger.service.Ledger`."""

    name = APPLICATION_NAME

    def __init__(self, url: DatabaseURL, *, cache_size: int = 50_000) -> None:
        env = url.event_store_env() | {
            "AGGREGATE_CACHE_MAXSIZE": str(cache_size),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
            "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
        }
        prefix = APPLICATION_NAME.upper() + "_"
        env |= {prefix + key: value for key, value in env.items() if not key.startswith(prefix)}
        # Processes starting together race on CREATE TABLE IF NOT EXISTS in
        # PostgreSQL ("tuple concurrently updated"); the loser simply retries.
        # A database that cannot be reached is not retried here: the caller
        # is told at once (DatabaseUnavailableError), and each failed attempt's
        # connection pool is closed (its threads would keep reconnecting).
        for attempt in range(5):
            try:
                super().__init__(env=env)
                break
            except (InternalError, OperationalError, InterfaceError) as error:
                factory = getattr(self, "factory", None)
                if factory is not None:
                    factory.close()
                reason = unavailable_reason(error)
                if reason is not None:
                    raise DatabaseUnavailableError(reason) from error
                if attempt == 4 or isinstance(error, InterfaceError):
                    raise
                time.sleep(0.05 * (attempt + 1))
        self.url = url
        self.dialect = Dialect.of(self.recorder)

    def construct_mapper(self) -> Mapper[UUID]:
        return ChainedEventMapper()

    def load(self, aggregate_id: UUID) -> Aggregate:
        """The aggregate as stored, or :class:`AggregateNotFoundError`.

        A private copy: from the cache (fast-forwarded with any events other
        processes stored since) or rebuilt from the store.
        """
        aggregate: Aggregate = self.repository.get(aggregate_id, projector_func=_project)
        return aggregate

    def fast_forward(self, aggregate: Aggregate) -> Aggregate:
        """``aggregate`` (a private copy of a stored state) with the events
        stored after its version applied: what :meth:`load` gives, without
        replaying what the copy already holds."""
        stored = self.recorder.select_events(aggregate.id, gt=aggregate.version)
        mapper = cast(ChainedEventMapper, self.mapper)
        return _project(aggregate, map(mapper.to_domain_event, stored)) or aggregate

    def exists(self, aggregate_id: UUID) -> bool:
        """Whether the aggregate has any stored event (one indexed query; no
        cache, no replay)."""
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    def existing(self, aggregate_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have stored events: one query for all."""
        if not aggregate_ids:
            return set()
        recorder: Any = self.recorder
        dialect = self.dialect
        # Only identifiers are spliced in: the schema (checked when the URL is
        # parsed) and the library's table name; the ids are parameters (the
        # library keeps them as UUIDs on PostgreSQL, as hex text on SQLite).
        table = dialect.library_table(recorder.events_table_name)
        ids = aggregate_ids if dialect.postgres else [i.hex for i in aggregate_ids]
        found: set[UUID] = set()
        with recorder.datastore.transaction(commit=False) as cursor:
            for select, parameters in dialect.any_of(
                f"SELECT DISTINCT originator_id FROM {table} WHERE",  # noqa: S608
                "originator_id",
                ids,
            ):
                cursor.execute(dialect.params(select), parameters)
                found.update(UUID(str(row["originator_id"])) for row in cursor.fetchall())
        return found

    def is_current(self, aggregate_id: UUID, version: int) -> bool:
        """Whether the aggregate has no stored event after ``version``."""
        return not self.recorder.select_events(aggregate_id, gt=version, limit=1)

    def append(self, events: Sequence[Event]) -> None:
        """Store events in one transaction.

        This is ``Application.save`` without its generic collection step
        (runtime protocol checks cost more than the insert on the hot path)
        and without snapshots or notifications, which the ledger does not use.
        Raises ``IntegrityError`` if any (aggregate, version) is taken.
        """
        self.events.put(list(events))


def _project(aggregate: Aggregate | None, events: Iterable[Event]) -> Aggregate | None:
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate
