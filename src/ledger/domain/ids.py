"""Deterministic aggregate ids (UUIDv5), so each is derivable by anyone.

Deriving ids from meaning (a fingerprint, a good and tier, a serial) is what
makes duplicates impossible: a second unit No. 37 of a tier, or a second
record of one idempotency key, would need the same id at version 1, which the
event store's unique key refuses.
"""

from __future__ import annotations

import functools
import hashlib
from uuid import UUID, SafeUUID

# Fixed forever: ids derived under it are part of the stored history.
LEDGER_NAMESPACE = UUID("6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60")


_NAMESPACE_BYTES = LEDGER_NAMESPACE.bytes
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version and variant bits
_SET = (5 << 76) | (0x8000 << 48)  # version 5, RFC 4122 variant


def _derive(kind: str, *parts: object) -> UUID:
    """``uuid5(LEDGER_NAMESPACE, "kind/part/...")``, built without
    ``UUID.__init__``'s checks (ids are derived on every command; a test
    keeps this equal to the standard library's ``uuid5``)."""
    name = "/".join((kind, *(str(p) for p in parts)))
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    derived = object.__new__(UUID)
    object.__setattr__(derived, "int", (int.from_bytes(digest[:16]) & _CLEAR) | _SET)
    object.__setattr__(derived, "is_safe", SafeUUID.unknown)
    return derived


def good_id_for(fingerprint: str) -> UUID:
    return _derive("good", fingerprint)


@functools.lru_cache(maxsize=4096)
def stock_id_for(good_id: UUID, tier: str) -> UUID:
    return _derive("stock", good_id, tier)


def unit_id_for(good_id: UUID, tier: str, serial: int) -> UUID:
    return _derive("unit", good_id, tier, serial)


def channel_id_for(channel: str) -> UUID:
    return _derive("channel", channel)


def account_id_for(account: str) -> UUID:
    return _derive("account", account)


def allowance_id_for(stock_id: UUID, buyer: str) -> UUID:
    return _derive("allowance", stock_id, buyer)


@functools.lru_cache(maxsize=4096)  # a command's id is asked for several times
def command_id_for(scope: str, key: str) -> UUID:
    return _derive("command", scope, key)


def code_id_for(ref: str) -> UUID:
    """A redemption code's aggregate, named by its keyed hash: a code
    imported twice would need the same id at version 1."""
    return _derive("code", ref)


def apikey_id_for(key_id: str) -> UUID:
    """An API key's aggregate: its issue and revocation (never its secret)."""
    return _derive("apikey", key_id)


def webhook_id_for(subscription_id: str) -> UUID:
    """A webhook subscription's aggregate (its endpoint and types, never its secret)."""
    return _derive("webhook", subscription_id)


def subscription_id_for(role: str, subject: str | None, idempotency_key: str) -> str:
    """A new subscription's id, from who registers it and with which key: a
    retry of the same registration names the same subscription."""
    return _derive("webhook-registration", role, subject or "", idempotency_key).hex
