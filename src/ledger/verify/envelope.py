"""An event's envelope (sections 1 to 3), on the general path: the columns
of a stored row or the members of an export line, and the state's members,
each checked and named if wrong (the fast path,
:mod:`ledger.verify.fastpath`, takes rows where all of it holds)."""

from __future__ import annotations

from ledger.verify import codec
from ledger.verify.actors import actor_problem
from ledger.verify.facts import Event, Flag, Payload, short


def check_columns(
    flag: Flag, ev: Event, aggregate_id: object, version: object, event_type: object
) -> bool:
    """The columns of a row (or the members of an export line) that the
    envelope of section 2 fixes; whether the event can be chained."""
    usable = True
    if not codec.is_uuid(aggregate_id):
        flag(
            ev,
            "bad-envelope",
            f"aggregate id {short(aggregate_id)} is not a lowercase 8-4-4-4-12 UUID",
        )
        usable = isinstance(aggregate_id, str)
    if not (
        isinstance(version, int)
        and codec.is_int(version)
        and 1 <= version <= codec.SAFE_INTEGER_MAX
    ):
        flag(ev, "bad-envelope", f"version {short(version)} is not an integer in 1..2**53-1")
        usable = False
    if not isinstance(event_type, str):
        flag(ev, "bad-envelope", f"type {short(event_type)} is not a string")
        usable = False
    return usable


def read_envelope(flag: Flag, ev: Event, value: Payload) -> None:
    """The state's ``prev_hash``, ``timestamp``, ``payload`` and (optional)
    ``recorded_by``, each onto ``ev`` if it is of its form (else flagged)."""
    prev = value.get("prev_hash")
    if codec.is_hex64(prev):
        ev.prev_hash = prev
    elif "prev_hash" in value:
        flag(ev, "bad-envelope", f"prev_hash {short(prev)} is not 64 lowercase hex digits")
    stamp = value.get("timestamp")
    if codec.is_timestamp(stamp):
        ev.timestamp = stamp
    elif "timestamp" in value:
        flag(ev, "bad-timestamp", f"timestamp {short(stamp)} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    payload = value.get("payload")
    if isinstance(payload, dict):
        ev.payload = payload
    elif "payload" in value:
        flag(ev, "bad-envelope", "payload is not an object")
    if "recorded_by" in value:
        problem = actor_problem(value["recorded_by"])
        if problem is None:
            ev.recorded_by = value["recorded_by"]
        else:
            flag(ev, "bad-envelope", problem)
