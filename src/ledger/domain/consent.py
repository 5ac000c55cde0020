"""A holder's consent to take a unit to another channel: a signed
authorization (``docs/format.md`` section 10).

The holder registers an Ed25519 public key for their account (through a
channel that serves it). To take a unit to another channel, the holder
signs an authorization; the new channel presents it. Its *payload* is the
canonical JSON (section 1) of::

    {"account", "expires_at", "log", "nonce", "to_channel", "type", "unit_id"}

with ``type`` = ``ledger.unit-move.v1``, ``log`` = the log's origin (so an
authorization for one ledger is worthless on another), ``nonce`` = the
unit's version when it was signed -- a move makes the unit's next event, so
an authorization is good for one move only and a replay finds the nonce
spent -- and ``expires_at`` a timestamp at most :data:`TTL_MAX` ahead. The
signature is Ed25519 over DSSE's pre-authentication encoding of the payload
with :data:`PAYLOAD_TYPE`. On the wire and in the event, an authorization
is ``{"key_id", "payload", "signature"}`` with the payload and signature in
unpadded base64url.

The domain decides; the signature primitive is handed in (``verify``), so
this module stays free of any cryptography library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from ledger.domain import canonical
from ledger.domain.errors import (
    AuthorizationError,
    AuthorizationExpiredError,
    AuthorizationReplayedError,
    InvalidInputError,
)
from ledger.domain.model import format_timestamp, parse_timestamp

MOVE = "ledger.unit-move.v1"
PAYLOAD_TYPE = "application/vnd.ledger.unit-move+json"
TTL_MAX = timedelta(days=7)
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
AUTHORIZATION_BYTES_MAX = 2_048
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_PAYLOAD_KEYS = frozenset(
    {"account", "expires_at", "log", "nonce", "to_channel", "type", "unit_id"}
)

Verify = Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: Any, *, field: str) -> bytes:
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidInputError(field, "must be unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInputError(field, "must be unpadded base64url") from None


def key_id_of(public_key: bytes) -> str:
    """A registered key's id: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def check_public_key(text: Any) -> tuple[str, bytes]:
    """``(key_id, raw key)`` of a public key given in base64url."""
    raw = unb64url(text, field="public_key")
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidInputError("public_key", f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    return key_id_of(raw), raw


def pae(body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``body`` (the signed bytes)."""
    kind = PAYLOAD_TYPE.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


@dataclass(frozen=True)
class Authorization:
    """A parsed authorization: its wire form (as the event keeps it), the
    payload it signs, and what the payload says."""

    wire: dict[str, str]
    body: bytes
    signature: bytes
    key_id: str
    account: str
    unit_id: str
    to_channel: str
    log: str
    nonce: int
    expires_at: datetime

    @classmethod
    def parse(cls, raw: Any) -> Authorization:
        """Check an authorization's form (not yet whether it holds), naming
        the field that is wrong."""
        if not isinstance(raw, Mapping) or set(raw) != {"key_id", "payload", "signature"}:
            raise InvalidInputError(
                "authorization", "must be an object of key_id, payload and signature"
            )
        if len(orjson.dumps(dict(raw))) > AUTHORIZATION_BYTES_MAX:
            raise InvalidInputError("authorization", f"is at most {AUTHORIZATION_BYTES_MAX} bytes")
        key_id = raw["key_id"]
        if not isinstance(key_id, str) or not re.fullmatch(r"[0-9a-f]{16}", key_id):
            raise InvalidInputError("authorization.key_id", "must be 16 lowercase hex digits")
        body = unb64url(raw["payload"], field="authorization.payload")
        signature = unb64url(raw["signature"], field="authorization.signature")
        if len(signature) != SIGNATURE_BYTES:
            raise InvalidInputError(
                "authorization.signature", f"an Ed25519 signature is {SIGNATURE_BYTES} bytes"
            )
        p = _payload(body)
        return cls(
            wire={"key_id": key_id, "payload": raw["payload"], "signature": raw["signature"]},
            body=body,
            signature=signature,
            key_id=key_id,
            account=p["account"],
            unit_id=p["unit_id"],
            to_channel=p["to_channel"],
            log=p["log"],
            nonce=p["nonce"],
            expires_at=p["expires_at"],
        )

    def check(
        self,
        *,
        unit_id: str,
        unit_version: int,
        holder: str | None,
        to_channel: str,
        log: str | None,
        public_key: bytes | None,
        now: datetime,
        verify: Verify,
    ) -> None:
        """Whether this authorization lets ``to_channel`` take the unit now."""
        where = "authorization.payload"
        if self.unit_id != unit_id:
            raise InvalidInputError(f"{where}.unit_id", f"names unit {self.unit_id}, not {unit_id}")
        if self.to_channel != to_channel:
            raise AuthorizationError(
                f"{where}.to_channel",
                f"authorizes channel {self.to_channel!r}, not {to_channel!r}",
            )
        if log is None:
            raise AuthorizationError(
                f"{where}.log", "this ledger signs no log (a server started without --log-key)"
            )
        if self.log != log:
            raise AuthorizationError(f"{where}.log", f"is for log {self.log!r}, not {log!r}")
        if holder is None or self.account != holder:
            raise AuthorizationError(
                f"{where}.account", f"{self.account!r} does not hold unit {unit_id}"
            )
        if public_key is None:
            raise AuthorizationError(
                "authorization.key_id",
                f"no key {self.key_id} is registered for account {self.account!r}",
            )
        if not verify(public_key, pae(self.body), self.signature):
            raise AuthorizationError(
                "authorization.signature", "does not verify with the account's key"
            )
        if now >= self.expires_at:
            raise AuthorizationExpiredError(
                f"{where}.expires_at", f"expired at {format_timestamp(self.expires_at)}"
            )
        if self.expires_at - now > TTL_MAX:
            raise AuthorizationError(
                f"{where}.expires_at", f"is more than {TTL_MAX.days} days ahead"
            )
        if self.nonce != unit_version:
            raise AuthorizationReplayedError(
                f"{where}.nonce",
                f"was signed for the unit's version {self.nonce}; it is at {unit_version} "
                "(an authorization moves a unit once: this one is spent, or was never good)",
            )


def payload_bytes(
    *,
    account: str,
    unit_id: str,
    to_channel: str,
    log: str,
    nonce: int,
    expires_at: datetime,
) -> bytes:
    """The canonical payload a holder signs (for wallets and tests)."""
    return canonical.encode(
        {
            "account": account,
            "expires_at": format_timestamp(expires_at),
            "log": log,
            "nonce": nonce,
            "to_channel": to_channel,
            "type": MOVE,
            "unit_id": unit_id,
        }
    )


def _payload(body: bytes) -> dict[str, Any]:
    where = "authorization.payload"
    try:
        p = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInputError(where, "is not JSON") from None
    if not isinstance(p, dict) or set(p) != _PAYLOAD_KEYS:
        raise InvalidInputError(where, f"must hold exactly {', '.join(sorted(_PAYLOAD_KEYS))}")
    if not canonical.is_canonical(body):
        raise InvalidInputError(where, "is not canonical JSON (docs/format.md section 1)")
    if p["type"] != MOVE:
        raise InvalidInputError(f"{where}.type", f"must be {MOVE!r}")
    for name in ("account", "unit_id", "to_channel", "log", "expires_at"):
        if not isinstance(p[name], str):
            raise InvalidInputError(f"{where}.{name}", "must be a string")
    if not isinstance(p["nonce"], int) or isinstance(p["nonce"], bool) or p["nonce"] < 1:
        raise InvalidInputError(f"{where}.nonce", "must be a positive integer")
    try:
        p["expires_at"] = parse_timestamp(p["expires_at"])
    except ValueError:
        raise InvalidInputError(
            f"{where}.expires_at", "must be a timestamp like 2026-12-08T10:00:00.000000Z"
        ) from None
    return p
