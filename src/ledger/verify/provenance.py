"""The platform's side: check a provenance bundle offline, with only a
tlog-policy, trusting nothing the server says.

For every event: its record parses and is canonical; it belongs to the
unit; versions run 1, 2, 3… and each ``prev_hash`` is the previous record's
hash; its tlog-proof's checkpoint satisfies the policy (log signature and
the verifiers' quorum); and the record's leaf is included in that
checkpoint's tree at the proof's index. Then the history is read off the
verified records: holders, prices, channels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ledger.tlog import merkle
from ledger.tlog.c2sp import NoteError
from ledger.tlog.policy import Policy, PolicyResult
from ledger.tlog.proof import parse_tlog_proof
from ledger.verify import codec

FORMAT = "ledger.provenance/v1"


class ProvenanceError(ValueError):
    """The bundle does not prove what it claims; the message says why."""


@dataclass
class Provenance:
    unit_id: str
    tree_size: int
    cosigners: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def holder(self) -> str | None:
        return self.history[-1]["holder"] if self.history else None


def verify_provenance(bundle: dict[str, Any], policy: Policy) -> Provenance:
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise ProvenanceError(f"not a {FORMAT} bundle")
    unit_id = str(bundle.get("unit_id"))
    events = bundle.get("events")
    if not isinstance(events, list) or not events:
        raise ProvenanceError("the bundle has no events")
    checked = _checked(bundle, policy)
    result = Provenance(unit_id, checked.checkpoint.size, sorted(checked.cosigners))
    previous = codec.ZERO_HASH
    holder: str | None = None
    for number, item in enumerate(events, 1):
        record = str(item.get("record", "")).encode()
        parsed, index = _proven_event(number, item, record, unit_id, previous, checked)
        previous = hashlib.sha256(record).hexdigest()
        holder = _holder_after(parsed, holder)
        payload = parsed.get("payload", {})
        result.history.append(
            {
                "version": number,
                "type": parsed.get("type"),
                "at": parsed.get("timestamp"),
                "holder": holder,
                "price": payload.get("price"),
                "channel": payload.get("channel"),
                "leaf_index": index,
                "event_hash": previous,
            }
        )
    return result


def _checked(bundle: dict[str, Any], policy: Policy) -> PolicyResult:
    """The bundle's checkpoint, cosigned as the policy asks."""
    try:
        checked = policy.check(str(bundle.get("checkpoint")))
    except NoteError as error:
        raise ProvenanceError(f"checkpoint: {error}") from None
    if not checked.ok:
        raise ProvenanceError(
            f"checkpoint is cosigned by {sorted(checked.cosigners)}: the policy's quorum is not met"
            if not checked.quorum_met
            else f"forged cosignatures: {checked.invalid_cosigners}"
        )
    return checked


def _proven_event(
    number: int,
    item: Any,
    record: bytes,
    unit_id: str,
    previous: str,
    checked: PolicyResult,
) -> tuple[dict[str, Any], int]:
    """Event ``number`` of the unit's history: canonical, the next version,
    chained to ``previous``, and in the log under the checkpoint. Returns
    the parsed record and its leaf index."""
    try:
        parsed, not_canonical = codec.parse(record)
        proof = parse_tlog_proof(str(item.get("proof", "")))
    except (ValueError, NoteError) as error:
        raise ProvenanceError(f"event {number}: {error}") from None
    if not_canonical is not None or not isinstance(parsed, dict):
        raise ProvenanceError(f"event {number}: the record is not canonical JSON")
    if parsed.get("aggregate_id") != unit_id or parsed.get("version") != number:
        raise ProvenanceError(f"event {number}: not version {number} of unit {unit_id}")
    if parsed.get("prev_hash") != previous:
        raise ProvenanceError(
            f"event {number}: prev_hash does not link to the previous "
            "event (history incomplete or altered)"
        )
    if proof.checkpoint != checked.checkpoint:
        raise ProvenanceError(f"event {number}: proven against another checkpoint")
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(record),
            proof.index,
            checked.checkpoint.size,
            proof.inclusion,
            checked.checkpoint.root,
        )
    except merkle.ProofError as error:
        raise ProvenanceError(f"event {number}: not in the log: {error}") from None
    return parsed, proof.index


def _holder_after(record: dict[str, Any], holder: str | None) -> str | None:
    payload = record.get("payload", {})
    kind = record.get("type")
    if kind in ("unit.issued", "unit.reissued"):
        return str(payload.get("holder"))
    if kind == "unit.resold":
        return str(payload.get("buyer"))
    if kind == "unit.refunded":
        returned = payload.get("returned_to")
        return str(returned) if returned is not None else None
    return holder
