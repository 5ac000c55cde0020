"""The audit trail's row of each event: who recorded it, what it touched,
and its log leaf -- one tuple per event, cheap enough for every event.

An event the projector decodes anyway gives its ``recorded_by`` and
timestamp from the decoded object; any other is read by slicing its stored
state, whose last members are fixed (docs/format.md section 2): ``…,
"prev_hash":"<64 hex>"[,"recorded_by":{…}],"timestamp":"<27>"}``. The byte
before ``,"timestamp":`` is ``}`` exactly when ``recorded_by`` is there
(``"`` ends the prev_hash otherwise), and its members are validated
identifiers without quotes, so its opening is the last ``,"recorded_by":``.

The good and unit of a row depend only on the event and on rows that exist
whatever the batch boundaries (the stock's or the unit's, opened or issued
at an earlier position), so a replay gives the same rows.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from ledger.domain.model import record_bytes
from ledger.projections.batch import Batch, Record

_TAIL = len(',"timestamp":"') + 27 + len('"}')  # the timestamp member and the closing brace
_ACTOR = b',"recorded_by":'
# Events the projector does not otherwise decode whose payload names a unit
# or good (the rest are sliced, never parsed).
PAYLOAD_NAMES = frozenset(
    {
        "code.imported",
        "code.bound",
        "code.delivered",
        "code.redeemed",
        "code.returned",
        "code.voided",
        "account.linked",
    }
)


def actor_and_time(state: bytes) -> tuple[Any, str]:
    """The ``recorded_by`` member (None if absent) and timestamp of a stored
    state, without parsing the rest."""
    end = len(state) - _TAIL
    at = state[end + 14 : -2].decode()
    if state[end - 1 : end] != b"}":
        return None, at
    start = state.rfind(_ACTOR, 0, end) + len(_ACTOR)
    return orjson.loads(state[start:end]), at


def leaf_hash(r: Record) -> str:
    """base64 of the event's RFC 9162 leaf hash, SHA-256(0x00 || record bytes):
    what ``GET /log/entries`` and the inclusion proofs give for its leaf."""
    record = record_bytes(r.aggregate_id, r.version, r.type, r.state)
    return base64.b64encode(hashlib.sha256(b"\x00" + record).digest()).decode()


def audit_row(b: Batch, r: Record, event: dict[str, Any] | None) -> tuple[Any, ...]:
    """The row of ``r`` (``event``: its decoded state, if it was decoded)."""
    if event is None:
        actor, at = actor_and_time(r.state)
        payload: dict[str, Any] = {}
    else:
        actor, at, payload = event.get("recorded_by"), event["timestamp"], event["payload"]
    kind = r.type.split(".", 1)[0]
    good_id: Any = None
    unit_id: Any = payload.get("unit_id")
    if kind == "good":
        good_id = r.aggregate_id
    elif "good_id" in payload:  # stock.opened, unit.issued, code.imported
        good_id = payload["good_id"]
    elif kind == "stock" and r.aggregate_id in b.stock:
        good_id = b.stock[r.aggregate_id]["good_id"]
    if kind == "unit":
        unit_id = r.aggregate_id
        good_id = b.units[r.aggregate_id]["good_id"]
    if actor is None:
        key_id = role = subject = request_id = None
    else:
        key_id, role = actor.get("key_id"), actor["role"]
        subject, request_id = actor["subject"], actor["request_id"]
    return (
        r.position,
        r.aggregate_id,
        r.version,
        r.type,
        at,
        key_id,
        role,
        subject,
        request_id,
        good_id,
        unit_id,
        leaf_hash(r),
    )
