"""Provenance with proofs: a unit's whole history, each event with a C2SP
``tlog-proof`` against the latest checkpoint (with the cosignatures the
ledger has received), so a platform can check it without trusting us.

The bundle is JSON::

    {"format": "ledger.provenance/v1", "unit_id": "...",
     "checkpoint": "<signed note with cosignatures>",
     "events": [{"record": "<record bytes>", "proof": "<tlog-proof text>"}, ...]}

Each proof's ``extra`` line carries the event's ``aggregate_id`` and
``version`` (unauthenticated, as the spec says: the verifier recomputes the
leaf from the record). :mod:`ledger.verify.provenance` checks a bundle.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.domain.errors import UnitNotFoundError
from ledger.domain.model import record_bytes
from ledger.store.eventstore import EventStore
from ledger.store.logstore import LogStore
from ledger.tlog import merkle
from ledger.tlog.note import format_tlog_proof

FORMAT = "ledger.provenance/v1"


class NotYetSealedError(LookupError):
    """Some of the unit's events are not under a signed checkpoint yet."""


def provenance_bundle(store: EventStore, log: LogStore, unit_id: UUID | str
                      ) -> dict[str, Any]:
    unit_id = UUID(str(unit_id))
    stored = list(store.recorder.select_events(unit_id))
    if not stored:
        raise UnitNotFoundError(unit_id)
    latest = log.latest_checkpoint()
    if latest is None:
        raise NotYetSealedError("the log has not signed a checkpoint yet")
    signed = latest.note + "".join(
        line + "\n" for line in log.cosignatures(latest.size).values())
    events = []
    for event in stored:
        leaf = log.leaf_of(str(unit_id), event.originator_version)
        if leaf is None or leaf.index >= latest.size:
            raise NotYetSealedError(
                f"unit {unit_id} v{event.originator_version} is not under a checkpoint yet")
        record = record_bytes(str(unit_id), event.originator_version, event.topic,
                              bytes(event.state))
        proof = merkle.inclusion_proof(leaf.index, latest.size, log)
        extra = f"{unit_id} {event.originator_version}".encode()
        events.append({"record": record.decode(),
                       "proof": format_tlog_proof(leaf.index, proof, signed, extra)})
    return {"format": FORMAT, "unit_id": str(unit_id), "checkpoint": signed,
            "events": events}
