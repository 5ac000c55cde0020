"""Deterministic aggregate ids (UUIDv5), so each is derivable by anyone.

Deriving ids from meaning (a fingerprint, a good and tier, a serial) is what
makes duplicates impossible: a second unit No. 37 of a tier, or a second
record of one idempotency key, would need the same id at version 1, which the
event store's unique key refuses.
"""

from __future__ import annotations

from uuid import UUID, uuid5

# Fixed forever: ids derived under it are part of the stored history.
LEDGER_NAMESPACE = UUID("6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60")


def _derive(kind: str, *parts: object) -> UUID:
    return uuid5(LEDGER_NAMESPACE, "/".join((kind, *(str(p) for p in parts))))


def good_id_for(fingerprint: str) -> UUID:
    return _derive("good", fingerprint)


def stock_id_for(good_id: UUID, tier: str) -> UUID:
    return _derive("stock", good_id, tier)


def unit_id_for(good_id: UUID, tier: str, serial: int) -> UUID:
    return _derive("unit", good_id, tier, serial)


def channel_id_for(channel: str) -> UUID:
    return _derive("channel", channel)


def allowance_id_for(stock_id: UUID, buyer: str) -> UUID:
    return _derive("allowance", stock_id, buyer)


def command_id_for(scope: str, key: str) -> UUID:
    return _derive("command", scope, key)


def code_id_for(ref: str) -> UUID:
    """A redemption code's aggregate, named by its keyed hash: a code
    imported twice would need the same id at version 1."""
    return _derive("code", ref)
