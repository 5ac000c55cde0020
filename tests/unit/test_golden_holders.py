"""The holders' golden vectors (tests/golden/vectors_holders.json): each
record and hash recomputed from docs/format.md alone (RFC 8785, SHA-256),
the authorization's signed bytes and Ed25519 signature from section 10, the
ledger's own code reading them back byte for byte, and the independent
verifier finding nothing about authority in them."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.store.eventstore import ChainedEventMapper

PATH = Path(__file__).parents[1] / "golden" / "vectors_holders.json"
SHA256 = "79c39f1a59a1f6952ff0e408145dd5b61e2672746c72baea1ad4b372bd569972"
VECTORS: dict[str, Any] = json.loads(PATH.read_text())
NAMESPACE = uuid.UUID("6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60")


def test_the_file_is_the_frozen_one() -> None:
    assert hashlib.sha256(PATH.read_bytes()).hexdigest() == SHA256


@pytest.mark.parametrize("vector", VECTORS["events"], ids=lambda v: f"{v['type']}-v{v['version']}")
def test_record_and_hash_from_the_spec_alone(vector: dict[str, Any]) -> None:
    common = {k: vector[k] for k in ("payload", "prev_hash", "timestamp")}
    state = rfc8785.dumps(common)
    record = rfc8785.dumps(common | {k: vector[k] for k in ("aggregate_id", "type", "version")})
    assert state.decode() == vector["state"]
    assert record.decode() == vector["record"]
    assert hashlib.sha256(record).hexdigest() == vector["hash"]


@pytest.mark.parametrize("vector", VECTORS["events"], ids=lambda v: f"{v['type']}-v{v['version']}")
def test_ledger_code_reads_them_back(vector: dict[str, Any]) -> None:
    from eventsourcing.persistence import StoredEvent

    event = ChainedEventMapper().to_domain_event(
        StoredEvent(
            originator_id=uuid.UUID(vector["aggregate_id"]),
            originator_version=vector["version"],
            topic=vector["type"],
            state=vector["state"].encode(),
        )
    )
    assert event.hash == vector["hash"]
    assert event.payload() == vector["payload"]


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_the_authorization_from_section_10_alone() -> None:
    holder, signed = VECTORS["holder_key"], VECTORS["authorization"]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(holder["seed_hex"]))
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert base64.urlsafe_b64encode(public).rstrip(b"=").decode() == holder["public_key"]
    assert hashlib.sha256(public).hexdigest()[:16] == holder["key_id"]
    body = signed["payload"].encode()
    assert rfc8785.dumps(json.loads(body)) == body  # canonical
    kind = b"application/vnd.ledger.unit-move+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)
    assert pae.hex() == signed["pae_hex"]
    assert key.sign(pae).hex() == signed["signature_hex"]  # Ed25519 is deterministic
    key.public_key().verify(bytes.fromhex(signed["signature_hex"]), pae)
    wire = signed["wire"]
    assert _unb64url(wire["payload"]) == body
    assert _unb64url(wire["signature"]).hex() == signed["signature_hex"]
    moved = next(
        e
        for e in VECTORS["events"]
        if e["type"] == "unit.moved" and e["payload"]["consent"] == "holder-signature"
    )
    assert moved["payload"]["authorization"] == wire
    payload = json.loads(body)
    assert payload["nonce"] == moved["version"] - 1
    assert payload["unit_id"] == moved["aggregate_id"]


def test_the_verifier_finds_nothing_about_authority_in_them() -> None:
    from ledger.verify import Verifier

    verifier = Verifier()
    for position, vector in enumerate(VECTORS["events"], start=1):
        verifier.feed_record(position, vector["record"].encode())
    checks = {f.check for f in verifier.finish("vectors").findings}
    # Not in the set: the channels' registrations, the unit's sale and its
    # command records. Only those findings.
    assert checks <= {"unknown-ref", "unit-mismatch", "command-missing"}, checks
    account, aggregate_id = VECTORS["ids"]["account"]
    assert str(uuid.uuid5(NAMESPACE, f"account/{account}")) == aggregate_id
