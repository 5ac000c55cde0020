"""Aggregates and hash-chained events, free of any framework.

Every event carries ``prev_hash``: the hash of its aggregate's previous event
(64 zeros for version 1). Its own hash is SHA-256 over its *record*, the
RFC 8785 encoding of::

    {"aggregate_id", "payload", "prev_hash", "recorded_by", "timestamp", "type", "version"}

(``recorded_by``, who acted, only when an actor was set: see
:mod:`ledger.domain.actor`.)

``docs/format.md`` defines this byte for byte. Because ``prev_hash`` is part of
the event, the chain link is stored atomically with the event, and two writers
racing for the same version cannot both extend the chain: the event store's
unique (aggregate id, version) key lets exactly one of them in.

The event store keeps ``state`` = the canonical encoding of
``{"payload", "prev_hash", ["recorded_by",] "timestamp"}``. The record is that object spliced
with ``aggregate_id``, ``type`` and ``version`` -- the keys sort around it, so
the splice *is* the canonical encoding of the merged object, and hashing never
re-encodes what was stored.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from uuid import UUID

from ledger.domain import canonical
from ledger.domain.actor import Actor, current_actor
from ledger.domain.errors import ChainError

ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "prev_hash"})
# Metadata of a payload field that is left out of the payload while it is
# None, so adding it later leaves every earlier event's bytes as they were.
OMIT_IF_NONE = {"omit_if_none": True}
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

EVENT_TYPES: dict[str, type[Event]] = {}
_MADE = threading.local()


def events_made() -> int:
    """How many events aggregates have triggered in this thread so far: a
    decision that raised changed nothing if this did not move."""
    count: int = getattr(_MADE, "count", 0)
    return count


@functools.lru_cache(maxsize=256)
def format_timestamp(moment: datetime) -> str:
    """UTC, microseconds, fixed width: ``2026-11-22T07:09:02.123456Z``.
    (Remembered: the events of a batch share one moment.)"""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    moment = datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    if format_timestamp(moment) != text:
        raise ValueError(f"timestamp {text!r} is not in the canonical form")
    return moment


def record_bytes(aggregate_id: str, version: int, event_type: str, state: bytes) -> bytes:
    """Splice stored ``state`` into the full event record (see module doc)."""
    if not (state.startswith(b'{"payload":') and state.endswith(b"}")):
        raise ChainError(f"event {aggregate_id} v{version}: state is not a ledger event")
    return b"".join(
        (
            b'{"aggregate_id":"',
            aggregate_id.encode(),
            b'",',
            state[1:-1],
            b',"type":',
            canonical.encode(event_type),
            b',"version":',
            str(version).encode(),
            b"}",
        )
    )


@dataclass(frozen=True)
class Event:
    """Base of every domain event: the envelope fields plus a typed payload."""

    TYPE: ClassVar[str] = ""

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    prev_hash: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("TYPE")
        if event_type:
            if event_type in EVENT_TYPES:
                raise AssertionError(f"event type {event_type!r} is defined twice")
            EVENT_TYPES[event_type] = cls

    # -- encoding -------------------------------------------------------
    def payload(self) -> dict[str, Any]:
        return {
            name: value
            for name, optional in _payload_fields(type(self))
            if (value := getattr(self, name)) is not None or not optional
        }

    @property
    def recorded_by(self) -> Actor | None:
        """Who recorded it (None: written without an actor, see :mod:`ledger.domain.actor`)."""
        actor: Actor | None = self.__dict__.get("_actor")
        return actor

    def stamp(self, actor: Actor | None) -> None:
        """Name who records it (before its state is encoded; not a payload field,
        so event classes are unchanged)."""
        if actor is not None:
            object.__setattr__(self, "_actor", actor)

    @property
    def state(self) -> bytes:
        """The bytes the event store keeps for this event (encoded once)."""
        cached: bytes | None = self.__dict__.get("_state")
        if cached is None:
            state: dict[str, Any] = {
                "payload": self.payload(),
                "prev_hash": self.prev_hash,
                "timestamp": format_timestamp(self.timestamp),
            }
            actor = self.__dict__.get("_actor")
            if actor is not None:
                state["recorded_by"] = actor.member
            cached = canonical.encode(state)
            object.__setattr__(self, "_state", cached)
        return cached

    def attach_stored_state(self, state: bytes) -> None:
        """Remember the exact stored bytes, so the hash is of what was stored."""
        object.__setattr__(self, "_state", state)

    @property
    def record(self) -> bytes:
        return record_bytes(str(self.originator_id), self.originator_version, self.TYPE, self.state)

    @property
    def hash(self) -> str:
        cached: str | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hashlib.sha256(self.record).hexdigest()
            object.__setattr__(self, "_hash", cached)
        return cached

    # -- evolving an aggregate ------------------------------------------
    def mutate(self, aggregate: Any) -> Any:
        """Check this event extends ``aggregate``'s chain, then apply it."""
        if aggregate is None:
            raise ChainError(
                f"event {self.TYPE} v{self.originator_version} of {self.originator_id} "
                "has no aggregate to apply to (its creation event is missing)"
            )
        if not isinstance(aggregate, Aggregate):
            raise TypeError(f"cannot apply {self.TYPE} to {type(aggregate).__name__}")
        if self.originator_id != aggregate.id:
            raise ChainError(f"event of {self.originator_id} applied to {aggregate.id}")
        if self.originator_version != aggregate.version + 1:
            raise ChainError(
                f"{aggregate.id}: event version {self.originator_version} does not follow "
                f"{aggregate.version}"
            )
        if self.prev_hash != aggregate.head_hash:
            raise ChainError(
                f"{aggregate.id} v{self.originator_version}: prev_hash {self.prev_hash} "
                f"does not match the previous event's hash {aggregate.head_hash}"
            )
        self.apply(aggregate)
        aggregate._advance(self)
        return aggregate

    def apply(self, aggregate: Any) -> None:
        raise NotImplementedError


_PAYLOAD_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _payload_fields(event_class: type[Event]) -> tuple[tuple[str, bool], ...]:
    """An event class's payload fields: (name, left out while None)."""
    found = _PAYLOAD_FIELDS.get(event_class)
    if found is None:
        found = _PAYLOAD_FIELDS[event_class] = tuple(
            (f.name, "omit_if_none" in f.metadata)
            for f in dataclasses.fields(event_class)
            if f.name not in ENVELOPE_FIELDS
        )
    return found


@dataclass(frozen=True)
class Created(Event):
    """An event that brings an aggregate into being (always version 1)."""

    AGGREGATE: ClassVar[type[Aggregate]]

    def mutate(self, aggregate: Any) -> Any:
        if aggregate is not None:
            raise ChainError(
                f"{self.originator_id}: creation event applied to an existing aggregate"
            )
        if self.originator_version != 1 or self.prev_hash != canonical.ZERO_HASH:
            raise ChainError(
                f"{self.originator_id}: creation event must be version 1 with zero prev_hash"
            )
        created = self.AGGREGATE._blank(self.originator_id)
        self.apply(created)
        created._advance(self)
        return created


class Aggregate:
    """A consistency boundary whose events form one hash chain."""

    _id: UUID
    _version: int
    _head_hash: str
    _pending: list[Event]

    @classmethod
    def _blank(cls, aggregate_id: UUID) -> Self:
        aggregate = cls.__new__(cls)
        aggregate._id = aggregate_id
        aggregate._version = 0
        aggregate._head_hash = canonical.ZERO_HASH
        aggregate._pending = []
        return aggregate

    @property
    def id(self) -> UUID:
        return self._id

    @property
    def version(self) -> int:
        return self._version

    @version.setter
    def version(self, value: int) -> None:
        self._version = value

    @property
    def head_hash(self) -> str:
        return self._head_hash

    def _advance(self, event: Event) -> None:
        self._version = event.originator_version
        self._head_hash = event.hash

    @classmethod
    def _create(
        cls, event_class: type[Created], aggregate_id: UUID, now: datetime, **payload: Any
    ) -> Self:
        event = event_class(
            originator_id=aggregate_id,
            originator_version=1,
            timestamp=now,
            prev_hash=canonical.ZERO_HASH,
            **payload,
        )
        event.stamp(current_actor())
        aggregate: Self = event.mutate(None)
        aggregate._pending.append(event)
        _MADE.count = getattr(_MADE, "count", 0) + 1
        return aggregate

    def _trigger(self, event_class: type[Event], now: datetime, **payload: Any) -> Event:
        event = event_class(
            originator_id=self._id,
            originator_version=self._version + 1,
            timestamp=now,
            prev_hash=self._head_hash,
            **payload,
        )
        event.stamp(current_actor())
        event.mutate(self)
        self._pending.append(event)
        _MADE.count = getattr(_MADE, "count", 0) + 1
        return event

    def collect_events(self) -> list[Event]:
        events, self._pending = self._pending, []
        return events

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        # Aggregates hold only JSON-like state; a structural copy is enough and
        # much cheaper than copy.deepcopy's generic walk on the hot path.
        clone = self.__class__.__new__(self.__class__)
        for key, value in self.__dict__.items():
            clone.__dict__[key] = _copy_json_like(value)
        return clone


def _copy_json_like(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy_json_like(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy_json_like(v) for k, v in value.items()}
    if isinstance(value, set):
        return set(value)
    return value  # immutable: str, int, UUID, datetime, frozen dataclasses, None
