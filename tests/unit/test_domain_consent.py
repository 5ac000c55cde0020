"""A holder's authorization (domain.consent, docs/format.md section 10):
its form, each member checked and named, and each reason it does not let
a channel take the unit -- with a real Ed25519 signature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.domain.consent import Authorization, b64url, pae, payload_bytes
from ledger.domain.errors import (
    AuthorizationError,
    AuthorizationExpiredError,
    AuthorizationReplayedError,
    InvalidInputError,
)
from ledger.service.cases.accounts import ed25519_verify

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
UNIT = "0b7c3f2e-5d1a-4c6e-9f00-000000000001"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signed(signer: Ed25519PrivateKey = KEY, **change: Any) -> dict[str, str]:
    fields = {
        "account": "carol",
        "unit_id": UNIT,
        "to_channel": "market",
        "log": "ledger.test/log",
        "nonce": 3,
        "expires_at": NOW + timedelta(minutes=10),
    } | change
    body = payload_bytes(**fields)
    return {
        "key_id": "0" * 16,
        "payload": b64url(body),
        "signature": b64url(signer.sign(pae(body))),
    }


def check(authorization: dict[str, str], **change: Any) -> None:
    facts = {
        "unit_id": UNIT,
        "unit_version": 3,
        "holder": "carol",
        "to_channel": "market",
        "log": "ledger.test/log",
        "public_key": PUBLIC,
        "now": NOW,
        "verify": ed25519_verify,
    } | change
    Authorization.parse(authorization).check(**facts)


def test_a_good_authorization_passes() -> None:
    check(signed())


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        ({"key_id": "0" * 16, "payload": "e30"}, "authorization"),
        ({"key_id": "XYZ", "payload": "e30", "signature": "AA"}, "authorization.key_id"),
        ({"key_id": "0" * 16, "payload": "e30=", "signature": "A" * 86}, "authorization.payload"),
        ({"key_id": "0" * 16, "payload": "e30", "signature": "AAAA"}, "authorization.signature"),
        (
            {"key_id": "0" * 16, "payload": b64url(b'{"a":1}'), "signature": "A" * 86},
            "authorization.payload",
        ),
        (
            {"key_id": "0" * 16, "payload": b64url(b"not json"), "signature": "A" * 86},
            "authorization.payload",
        ),
    ],
)
def test_a_malformed_authorization_names_its_member(wire: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        Authorization.parse(wire)
    assert refused.value.field == field


def test_a_payload_not_in_canonical_form_is_refused() -> None:
    body = payload_bytes(
        account="carol", unit_id=UNIT, to_channel="market", log="l", nonce=1, expires_at=NOW
    )
    spaced = body.replace(b'":', b'": ')
    wire = {"key_id": "0" * 16, "payload": b64url(spaced), "signature": "A" * 86}
    with pytest.raises(InvalidInputError, match="canonical"):
        Authorization.parse(wire)


@pytest.mark.parametrize(
    ("authorization", "change", "error", "field"),
    [
        (signed(to_channel="shop"), {}, AuthorizationError, "authorization.payload.to_channel"),
        (signed(log="another/log"), {}, AuthorizationError, "authorization.payload.log"),
        (signed(), {"log": None}, AuthorizationError, "authorization.payload.log"),
        (signed(account="mallory"), {}, AuthorizationError, "authorization.payload.account"),
        (signed(), {"holder": None}, AuthorizationError, "authorization.payload.account"),
        (signed(), {"public_key": None}, AuthorizationError, "authorization.key_id"),
        (signed(Ed25519PrivateKey.generate()), {}, AuthorizationError, "authorization.signature"),
        (
            signed(expires_at=NOW - timedelta(seconds=1)),
            {},
            AuthorizationExpiredError,
            "authorization.payload.expires_at",
        ),
        (
            signed(expires_at=NOW + timedelta(days=8)),
            {},
            AuthorizationError,
            "authorization.payload.expires_at",
        ),
        (signed(nonce=2), {}, AuthorizationReplayedError, "authorization.payload.nonce"),
        (signed(nonce=4), {}, AuthorizationReplayedError, "authorization.payload.nonce"),
        (signed(unit_id=UNIT[:-1] + "2"), {}, InvalidInputError, "authorization.payload.unit_id"),
    ],
)
def test_each_reason_an_authorization_does_not_hold(
    authorization: dict[str, str], change: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as refused:
        check(authorization, **change)
    assert refused.value.field == field  # type: ignore[attr-defined]
