"""The fast path: a stored row in which the verifier would find nothing wrong
with the bytes, the columns, the envelope or the payload's members
(:func:`clean_state`), its record's bytes (:func:`record_bytes`) and whether
a creation event has its derived id (:func:`own_id_ok`). Each depends on the
row alone, so a second process can run them (:mod:`ledger.verify.pipeline`).

A state that parses, is canonical, has its members of the right types (one
generated check per type, :data:`~ledger.verify.schema.PAYLOAD_OK`) and holds
no float goes straight to the rules; anything else takes the general path,
which names each problem. Both reach the same findings.
"""

from __future__ import annotations

from typing import Any

import orjson

from ledger.verify import codec
from ledger.verify.actors import actor_problem
from ledger.verify.facts import OWN_ID, Payload
from ledger.verify.schema import PAYLOAD_OK, UNTYPED_MEMBERS

STATE_KEYS = frozenset({"payload", "prev_hash", "timestamp"})
RECORD_KEYS = STATE_KEYS | {"aggregate_id", "type", "version"}
ACTOR = "recorded_by"  # the optional member of state and record (section 2)
STATE_KEYS_ACTOR = STATE_KEYS | {ACTOR}
RECORD_KEYS_ACTOR = RECORD_KEYS | {ACTOR}

_loads = orjson.loads
_dumps = orjson.dumps
_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_uuid_match = codec.UUID_PATTERN.fullmatch
_hex64_match = codec.HEX64_PATTERN.fullmatch
_timestamp_ok = codec.is_timestamp_text
_TYPE_TAILS = codec.TYPE_TAILS
_MAX = codec.SAFE_INTEGER_MAX
# Types with members that may hold any JSON (so maybe a float), and those.
_UNTYPED = {event_type: names for event_type, names in UNTYPED_MEMBERS.items() if names}


def clean_state(
    aggregate_id: object, version: object, event_type: object, state: object
) -> Payload | None:
    """The parsed state of a stored row in which
    :meth:`~ledger.verify.verifier.Verifier.feed` would find nothing wrong
    with the bytes, the columns, the envelope or the payload's members (so
    no finding but what the chain and the rules say); None for any other
    row. It depends on the row alone."""
    if not (
        type(aggregate_id) is str
        and type(version) is int
        and type(event_type) is str
        and type(state) is bytes
        and 0 < version <= _MAX
        and _uuid_match(aggregate_id) is not None
        and state.isascii()
    ):
        return None
    try:
        value = _loads(state)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict:
        return None
    keys = value.keys()
    if keys != STATE_KEYS and (keys != STATE_KEYS_ACTOR or actor_problem(value[ACTOR])):
        return None
    payload = value["payload"]
    prev_hash = value["prev_hash"]
    timestamp = value["timestamp"]
    payload_ok = PAYLOAD_OK.get(event_type)
    if (
        payload_ok is not None
        and type(prev_hash) is str
        and _hex64_match(prev_hash) is not None
        and type(timestamp) is str
        and _timestamp_ok(timestamp)
        and type(payload) is dict
        and payload_ok(payload)
        and (event_type not in _UNTYPED or _float_free(payload, _UNTYPED[event_type]))
        and canonical(value) == state
    ):
        return value
    return None


def own_id_ok(aggregate_id: str, event_type: str, payload: Payload) -> bool:
    """Whether a creation event (of a clean row) has its derived id."""
    parts = OWN_ID.get(event_type)
    return parts is not None and aggregate_id == codec.derive_id(*parts(payload))


def record_bytes(aggregate_id: str, version: int, event_type: str, state: bytes) -> bytes:
    """:func:`~ledger.verify.codec.splice`, for a row :func:`clean_state` passed."""
    tail = _TYPE_TAILS.get(event_type)
    if tail is None:
        tail = codec.type_tail(event_type)
    return b"".join(
        (
            b'{"aggregate_id":"',
            aggregate_id.encode(),
            b'",',
            state[1:-1],
            tail,
            str(version).encode(),
            b"}",
        )
    )


def canonical(value: Any) -> bytes | None:
    """The canonical bytes of a parsed value (None: it holds an integer
    beyond 64 bits, which cannot be re-encoded)."""
    try:
        return _dumps(value, option=_CANONICAL)
    except orjson.JSONEncodeError:
        return None


def _float_free(payload: Payload, members: tuple[str, ...]) -> bool:
    """No float anywhere in these members of the payload (False also when
    they nest deeper than :data:`_DEPTH`: the general path then looks)."""
    return all(_no_float(payload.get(name), _DEPTH) for name in members)  # (optional: absent)


_DEPTH = 64


def _no_float(value: Any, depth: int) -> bool:
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return kind is not float
    if not depth:
        return False
    for item in items:
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and not _no_float(item, depth - 1)):
            return False
    return True
