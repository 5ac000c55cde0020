"""Provenance with proofs: a unit's whole history, each event with a C2SP
``tlog-proof`` against the latest checkpoint (with the cosignatures the
ledger has received), so a platform can check it without trusting us.

The bundle is JSON::

    {"format": "ledger.provenance/v1", "unit_id": "...",
     "checkpoint": "<signed note with cosignatures>",
     "events": [{"record": "<record bytes>", "proof": "<tlog-proof text>"}, ...],
     "stock": {"record": "<its tier's stock.opened>", "proof": "<tlog-proof text>"},
     "edition": {"serial": 37, "of": 500, "basis": "quota"}}

``stock`` and ``edition`` (added with issue 14; a bundle made before has
neither) say "No. 37 of 500": the serial is the unit's ``unit.issued``'s,
the size its tier's ``stock.opened``'s ``lifetime_cap`` (see
:mod:`ledger.domain.edition`), both proven, so the verifier derives the
edition from them and refuses a bundle whose claim differs.

Each proof's ``extra`` line carries the event's ``aggregate_id`` and
``version`` (unauthenticated, as the spec says: the verifier recomputes the
leaf from the record). :mod:`ledger.verify.provenance` checks a bundle.
Each proof is verified first, from the record's own leaf hash, against the
checkpoint's signed root (:mod:`ledger.service.proofs`): a bundle with a
proof that does not verify is never made (``ProofStoreError``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from ledger.domain.edition import edition, edition_size
from ledger.domain.errors import InvariantError, UnitNotFoundError
from ledger.domain.ids import stock_id_for
from ledger.domain.model import record_bytes
from ledger.service.proofs import CheckedProofs
from ledger.store.eventstore import EventStore
from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.tlog import merkle
from ledger.tlog.proof import format_tlog_proof

FORMAT = "ledger.provenance/v1"


class NotYetSealedError(LookupError):
    """Some of the unit's events are not under a signed checkpoint yet."""


def provenance_bundle(
    store: EventStore, log: LogStore, unit_id: UUID | str, proofs: CheckedProofs | None = None
) -> dict[str, Any]:
    """``proofs``: the server's checker (its signed roots remembered); one of
    its own otherwise."""
    proofs = proofs if proofs is not None else CheckedProofs(log, store)
    unit_id = UUID(str(unit_id))
    stored = list(store.recorder.select_events(unit_id))
    if not stored:
        raise UnitNotFoundError(unit_id)
    latest = log.latest_checkpoint()
    if latest is None:
        raise NotYetSealedError("the log has not signed a checkpoint yet")
    signed = latest.note + "".join(line + "\n" for line in log.cosignatures(latest.size).values())
    events = [_proven(log, proofs, latest, signed, "unit", unit_id, e) for e in stored]
    issued = orjson.loads(events[0]["record"])["payload"]
    stock_id = stock_id_for(UUID(issued["good_id"]), issued["tier"])
    opened = list(store.recorder.select_events(stock_id, limit=1))
    if not opened:
        raise InvariantError(f"unit {unit_id} has no stock.opened for its tier")
    stock = _proven(log, proofs, latest, signed, "stock", stock_id, opened[0])
    tier = orjson.loads(stock["record"])["payload"]
    size = edition_size(tier["lifetime_cap"], tier["restockable"])
    return {
        "format": FORMAT,
        "unit_id": str(unit_id),
        "checkpoint": signed,
        "events": events,
        "stock": stock,
        "edition": edition(issued["serial"], size),
    }


def _proven(
    log: LogStore,
    proofs: CheckedProofs,
    latest: StoredCheckpoint,
    signed: str,
    kind: str,
    aggregate_id: UUID,
    event: StoredEvent,
) -> dict[str, str]:
    """One event's record, with its tlog-proof against ``latest``."""
    leaf = log.leaf_of(str(aggregate_id), event.originator_version)
    if leaf is None or leaf.index >= latest.size:
        raise NotYetSealedError(
            f"{kind} {aggregate_id} v{event.originator_version} is not under a checkpoint yet"
        )
    record = record_bytes(
        str(aggregate_id), event.originator_version, event.topic, bytes(event.state)
    )
    proof = proofs.inclusion(leaf.index, latest.size, latest, leaf=merkle.leaf_hash(record)).proof
    extra = f"{aggregate_id} {event.originator_version}".encode()
    return {
        "record": record.decode(),
        "proof": format_tlog_proof(leaf.index, proof, signed, extra),
    }
