"""The audit row's slicing of a stored state (projections/audit_rows.py):
the ``recorded_by`` member and timestamp read from the fixed tail equal
what parsing the whole state gives -- with and without an actor, and when
the payload itself holds a member named ``recorded_by`` or ``prev_hash``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledger.domain.canonical import encode
from ledger.projections.audit_rows import actor_and_time

AT = "2026-12-07T10:11:12.123456Z"
KEYED = {"key_id": "0123456789ab", "request_id": "req-1", "role": "channel", "subject": "shop"}
SERVER = {"request_id": "sweep:7", "role": "server", "subject": "ledger"}
TRICKY = {
    "definition": {
        "metadata": {
            "recorded_by": {"role": "admin", "request_id": "forged"},
            "prev_hash": "0" * 64,
            "note": '","recorded_by":{"x":1},"timestamp":"',
        }
    }
}


def state(payload: dict[str, Any], actor: dict[str, Any] | None) -> bytes:
    value: dict[str, Any] = {"payload": payload, "prev_hash": "ab" * 32, "timestamp": AT}
    if actor is not None:
        value["recorded_by"] = actor
    return encode(value)


@pytest.mark.parametrize("actor", [None, KEYED, SERVER])
@pytest.mark.parametrize("payload", [{}, {"unit_id": "u", "n": 3}, TRICKY])
def test_the_sliced_actor_and_time_are_the_parsed_ones(
    actor: dict[str, Any] | None, payload: dict[str, Any]
) -> None:
    stored = state(payload, actor)
    parsed = orjson.loads(stored)
    assert actor_and_time(stored) == (parsed.get("recorded_by"), parsed["timestamp"])
