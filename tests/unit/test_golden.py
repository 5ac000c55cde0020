"""Golden vectors freeze format v1 (docs/format.md).

Everything is recomputed from the vectors' inputs two ways: with the
reference RFC 8785 implementation plus hashlib/uuid (what an outsider would
write), and with the ledger's own code. Both must give the checked-in bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from ledger.domain import canonical, ids
from ledger.domain.money import Share, split
from ledger.store.eventstore import ChainedEventMapper

VECTORS_PATH = Path(__file__).parents[1] / "golden" / "vectors.json"
# Pinned: editing the vectors is a format change, not a test fix.
VECTORS_SHA256 = "aa98ee3396bac100a93eec63c4172c69c9239fbc5789d89dce8bd565421faf75"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())


def test_vectors_file_is_the_frozen_one() -> None:
    assert hashlib.sha256(VECTORS_PATH.read_bytes()).hexdigest() == VECTORS_SHA256


@pytest.mark.parametrize("vector", VECTORS["events"], ids=lambda v: f"{v['type']}-v{v['version']}")
def test_record_and_hash_from_the_spec_alone(vector: dict[str, Any]) -> None:
    record = rfc8785.dumps(
        {
            "aggregate_id": vector["aggregate_id"],
            "version": vector["version"],
            "type": vector["type"],
            "timestamp": vector["timestamp"],
            "payload": vector["payload"],
            "prev_hash": vector["prev_hash"],
        }
    )
    state = rfc8785.dumps(
        {
            "payload": vector["payload"],
            "prev_hash": vector["prev_hash"],
            "timestamp": vector["timestamp"],
        }
    )
    assert record.decode() == vector["record"]
    assert state.decode() == vector["state"]
    assert hashlib.sha256(record).hexdigest() == vector["hash"]


@pytest.mark.parametrize("vector", VECTORS["events"], ids=lambda v: f"{v['type']}-v{v['version']}")
def test_ledger_code_reads_and_rehashes_the_stored_form(vector: dict[str, Any]) -> None:
    from eventsourcing.persistence import StoredEvent

    stored = StoredEvent(
        originator_id=uuid.UUID(vector["aggregate_id"]),
        originator_version=vector["version"],
        topic=vector["type"],
        state=vector["state"].encode(),
    )
    event = ChainedEventMapper().to_domain_event(stored)
    assert event.record.decode() == vector["record"]
    assert event.hash == vector["hash"]
    # Re-encoding the decoded event gives the same stored bytes (no drift).
    fresh = type(event)(**{f.name: getattr(event, f.name) for f in dataclasses.fields(event)})
    assert fresh.state.decode() == vector["state"]


def test_events_form_chains() -> None:
    last: dict[str, tuple[int, str]] = {}
    for vector in VECTORS["events"]:
        version, head = last.get(vector["aggregate_id"], (0, canonical.ZERO_HASH))
        assert vector["version"] == version + 1
        assert vector["prev_hash"] == head
        last[vector["aggregate_id"]] = (vector["version"], vector["hash"])


def test_fingerprint_and_derived_ids() -> None:
    fp = VECTORS["fingerprint"]
    assert hashlib.sha256(rfc8785.dumps(fp["definition"])).hexdigest() == fp["fingerprint"]
    namespace = uuid.UUID(VECTORS["namespace"])
    assert namespace == ids.LEDGER_NAMESPACE
    names = VECTORS["ids"]
    assert str(uuid.uuid5(namespace, f"good/{names['good'][0]}")) == names["good"][1]
    assert (
        str(uuid.uuid5(namespace, "stock/{}/{}".format(*names["stock"][:2]))) == names["stock"][2]
    )
    assert (
        str(uuid.uuid5(namespace, "unit/{}/{}/{}".format(*names["unit"][:3]))) == names["unit"][3]
    )
    assert str(uuid.uuid5(namespace, f"channel/{names['channel'][0]}")) == names["channel"][1]
    assert (
        str(uuid.uuid5(namespace, "command/{}/{}".format(*names["command"][:2])))
        == names["command"][2]
    )
    assert str(ids.good_id_for(names["good"][0])) == names["good"][1]


@pytest.mark.parametrize("vector", VECTORS["splits"], ids=lambda v: str(v["amount"]))
def test_royalty_splits(vector: dict[str, Any]) -> None:
    shares = [Share(r, role, w) for r, role, w in vector["weights"]]
    assert split(vector["amount"], shares) == vector["parts"]


@pytest.mark.parametrize("vector", VECTORS["canonical"], ids=lambda v: v["bytes"][:20])
def test_canonical_encoding(vector: dict[str, Any]) -> None:
    assert canonical.encode(vector["value"]).decode() == vector["bytes"]
    assert rfc8785.dumps(vector["value"]).decode() == vector["bytes"]


# -- The second set: records with recorded_by (who acted; format.md section 2) --
ACTOR_VECTORS_PATH = VECTORS_PATH.with_name("vectors_recorded_by.json")
ACTOR_VECTORS_SHA256 = "a9fdfee299370ba4f0ae96c5f271b46a3cafd7759804093ef11e612af0777f45"
ACTOR_VECTORS: dict[str, Any] = json.loads(ACTOR_VECTORS_PATH.read_text())


def test_actor_vectors_file_is_the_frozen_one() -> None:
    assert hashlib.sha256(ACTOR_VECTORS_PATH.read_bytes()).hexdigest() == ACTOR_VECTORS_SHA256


@pytest.mark.parametrize(
    "vector", ACTOR_VECTORS["events"], ids=lambda v: f"{v['type']}-v{v['version']}"
)
def test_recorded_by_record_and_hash_from_the_spec_alone(vector: dict[str, Any]) -> None:
    """recorded_by sorts between prev_hash and timestamp, in the state and so
    in the record: the splice still is the record's canonical encoding."""
    assert vector["recorded_by"] is not None
    common = {
        "payload": vector["payload"],
        "prev_hash": vector["prev_hash"],
        "recorded_by": vector["recorded_by"],
        "timestamp": vector["timestamp"],
    }
    record = rfc8785.dumps(
        common
        | {
            "aggregate_id": vector["aggregate_id"],
            "type": vector["type"],
            "version": vector["version"],
        }
    )
    state = rfc8785.dumps(common)
    assert state.decode() == vector["state"]
    assert state.startswith(b'{"payload":')
    assert b'"prev_hash":' in state.split(b'"recorded_by":')[0]
    assert record.decode() == vector["record"]
    assert hashlib.sha256(record).hexdigest() == vector["hash"]


@pytest.mark.parametrize(
    "vector", ACTOR_VECTORS["events"], ids=lambda v: f"{v['type']}-v{v['version']}"
)
def test_ledger_code_reads_recorded_by_and_rehashes(vector: dict[str, Any]) -> None:
    from eventsourcing.persistence import StoredEvent

    stored = StoredEvent(
        originator_id=uuid.UUID(vector["aggregate_id"]),
        originator_version=vector["version"],
        topic=vector["type"],
        state=vector["state"].encode(),
    )
    event = ChainedEventMapper().to_domain_event(stored)
    assert event.recorded_by is not None
    assert event.recorded_by.member == vector["recorded_by"]
    assert event.hash == vector["hash"]
    fresh = type(event)(**{f.name: getattr(event, f.name) for f in dataclasses.fields(event)})
    assert fresh.state.decode() != vector["state"]  # no actor: no recorded_by
    fresh = type(event)(**{f.name: getattr(event, f.name) for f in dataclasses.fields(event)})
    fresh.stamp(event.recorded_by)
    assert fresh.state.decode() == vector["state"]


def test_actor_vectors_verify_from_the_spec() -> None:
    """The independent verifier takes them: chains, shapes, and the keys'
    rule (each event by a key follows its apikey.issued; the revocation is last)."""
    from ledger.verify import Verifier

    verifier = Verifier()
    for position, vector in enumerate(ACTOR_VECTORS["events"], start=1):
        verifier.feed_record(position, vector["record"].encode())
    checks = {f.check for f in verifier.finish("vectors").findings}
    # Not in the set: the sale's unit events and command record, the good's
    # second tier's stock. Only those findings, and none about actors.
    assert checks <= {"dangling-sale", "command-missing", "stock-mismatch"}, checks
    name = f"apikey/{ACTOR_VECTORS['ids']['apikey'][0]}"
    assert (
        str(uuid.uuid5(uuid.UUID(VECTORS["namespace"]), name))
        == (ACTOR_VECTORS["ids"]["apikey"][1])
    )
