"""A holder's signed authorization to move a unit, checked from the event
alone and the account's keys (docs/format.md section 10), written from the
format, not from the ledger's code."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.verify import codec

MOVE = "ledger.unit-move.v1"
PAYLOAD_TYPE = b"application/vnd.ledger.unit-move+json"
TTL_MAX = timedelta(days=7)
_KEYS = {"account", "expires_at", "log", "nonce", "to_channel", "type", "unit_id"}
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def unb64url(text: object) -> bytes | None:
    if not isinstance(text, str) or "=" in text:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def key_id_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def authorization_problem(
    authorization: object,
    *,
    unit_id: str,
    version: int,
    holder: str,
    to_channel: str,
    timestamp: str,
    keys: dict[str, bytes],
) -> str | None:
    """Why the authorization of the move at ``version`` of ``unit_id`` does
    not let ``to_channel`` take it from ``holder`` (None: it does)."""
    if not isinstance(authorization, dict) or set(authorization) != {
        "key_id",
        "payload",
        "signature",
    }:
        return "a holder-signature move carries an authorization {key_id, payload, signature}"
    body = unb64url(authorization["payload"])
    signature = unb64url(authorization["signature"])
    if body is None or signature is None:
        return "the authorization's payload or signature is not unpadded base64url"
    try:
        payload, not_canonical = codec.parse(body)
    except codec.NotJSONError:
        return "the authorization's payload is not JSON"
    if not_canonical is not None or not isinstance(payload, dict) or set(payload) != _KEYS:
        return "the authorization's payload is not the canonical object of section 10"
    wrong = [
        f"{name} {payload[name]!r} (expected {want!r})"
        for name, want in (
            ("type", MOVE),
            ("unit_id", unit_id),
            ("account", holder),
            ("to_channel", to_channel),
            ("nonce", version - 1),
        )
        if payload[name] != want
    ]
    if wrong:
        return "the authorization says " + "; ".join(wrong)
    expiry = _instant(payload["expires_at"])
    moved = _instant(timestamp)
    if expiry is None or moved is None:
        return "the authorization's expires_at is not a timestamp"
    if not moved < expiry <= moved + TTL_MAX:
        return f"the move at {timestamp} is outside the authorization's life (to {expiry})"
    key = keys.get(authorization["key_id"])
    if key is None:
        return f"no key {authorization['key_id']!r} of {holder!r} is registered and in force"
    message = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE, len(body), body)
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return "the authorization's signature does not verify with the holder's key"
    return None


def _instant(text: object) -> datetime | None:
    if not isinstance(text, str) or not codec.is_timestamp_text(text):
        return None
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)
