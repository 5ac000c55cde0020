"""The platform's side: check a provenance bundle offline, with only a
tlog-policy, trusting nothing the server says.

For every event: its record parses and is canonical; it belongs to the
unit; versions run 1, 2, 3… and each ``prev_hash`` is the previous record's
hash; its tlog-proof's checkpoint satisfies the policy (log signature and
the verifiers' quorum); and the record's leaf is included in that
checkpoint's tree at the proof's index. Then the history is read off the
verified records: holders, prices, channels.

A bundle with a ``stock`` (its tier's ``stock.opened``, proven the same
way) and an ``edition`` ("No. k of N") has it checked: the unit's id is its
first event's good, tier and serial; the stock is that tier's; and the
edition is ``{"serial": <the serial>, "of": <the stock's lifetime_cap>,
"basis": "lifetime-cap" if it is restockable else "quota"}``. A bundle
made before editions has neither member: its edition is unknown (None).
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
from ledger.verify.fastpath import canonical

FORMAT = "ledger.provenance/v1"


class ProvenanceError(ValueError):
    """The bundle does not prove what it claims; the message says why."""


@dataclass
class Provenance:
    unit_id: str
    tree_size: int
    cosigners: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)
    # "No. k of N": {"serial", "of", "basis"}, derived from the proven
    # unit.issued and stock.opened (None: the bundle carries no edition).
    edition: dict[str, Any] | None = None

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
    first: dict[str, Any] = {}
    for number, item in enumerate(events, 1):
        record = str(item.get("record", "")).encode()
        parsed, index = _proven_event(number, item, record, unit_id, previous, checked)
        first = first or parsed
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
    if "stock" in bundle or "edition" in bundle:
        result.edition = _edition(bundle, first, checked)
    return result


def _edition(
    bundle: dict[str, Any], first: dict[str, Any], checked: PolicyResult
) -> dict[str, Any]:
    """The edition the bundle claims, if its proven events say so."""
    payload = first.get("payload")
    if first.get("type") != "unit.issued" or not isinstance(payload, dict):
        raise ProvenanceError("edition: the unit's first event is no unit.issued")
    good_id, tier, serial = payload.get("good_id"), payload.get("tier"), payload.get("serial")
    if first.get("aggregate_id") != codec.derive_id("unit", good_id, tier, serial):
        raise ProvenanceError(
            f"edition: the unit's id is not that of serial {serial} of tier {tier!r}"
        )
    item = bundle.get("stock")
    if not isinstance(item, dict):
        raise ProvenanceError("edition: the bundle has no stock event to derive it from")
    stock_id = codec.derive_id("stock", good_id, tier)
    record = str(item.get("record", "")).encode()
    parsed, _index = _proven_event(
        "stock", item, record, stock_id, codec.ZERO_HASH, checked, version=1
    )
    opened = parsed.get("payload")
    if parsed.get("type") != "stock.opened" or not isinstance(opened, dict):
        raise ProvenanceError("stock: not a stock.opened")
    if (opened.get("good_id"), opened.get("tier")) != (good_id, tier):
        raise ProvenanceError("stock: not the stock of the unit's good and tier")
    cap, restockable = opened.get("lifetime_cap"), opened.get("restockable")
    if type(cap) is not int or type(restockable) is not bool:
        raise ProvenanceError("stock: lifetime_cap or restockable is missing or mistyped")
    derived = {"serial": serial, "of": cap, "basis": "lifetime-cap" if restockable else "quota"}
    claimed = bundle.get("edition")
    if claimed != derived or canonical(claimed) != canonical(derived):
        raise ProvenanceError(f"edition: the bundle claims {claimed!r}, its events say {derived!r}")
    return derived


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
    number: int | str,
    item: Any,
    record: bytes,
    aggregate_id: str,
    previous: str,
    checked: PolicyResult,
    *,
    version: int | None = None,
) -> tuple[dict[str, Any], int]:
    """Event ``number`` of the unit's history (or the ``"stock"`` event,
    its ``version``): canonical, the next version, chained to ``previous``,
    and in the log under the checkpoint. Returns the parsed record and its
    leaf index."""
    where = f"event {number}" if version is None else str(number)
    if version is None:
        version = int(number)
    if not isinstance(item, dict):
        raise ProvenanceError(f"{where}: not an object with a record and a proof")
    try:
        parsed, not_canonical = codec.parse(record)
        proof = parse_tlog_proof(str(item.get("proof", "")))
    except (ValueError, NoteError) as error:
        raise ProvenanceError(f"{where}: {error}") from None
    if not_canonical is not None or not isinstance(parsed, dict):
        raise ProvenanceError(f"{where}: the record is not canonical JSON")
    if parsed.get("aggregate_id") != aggregate_id or parsed.get("version") != version:
        raise ProvenanceError(f"{where}: not version {version} of {aggregate_id}")
    if parsed.get("prev_hash") != previous:
        raise ProvenanceError(
            f"{where}: prev_hash does not link to the previous "
            "event (history incomplete or altered)"
        )
    if proof.checkpoint != checked.checkpoint:
        raise ProvenanceError(f"{where}: proven against another checkpoint")
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(record),
            proof.index,
            checked.checkpoint.size,
            proof.inclusion,
            checked.checkpoint.root,
        )
    except merkle.ProofError as error:
        raise ProvenanceError(f"{where}: not in the log: {error}") from None
    return parsed, proof.index


def _holder_after(record: dict[str, Any], holder: str | None) -> str | None:
    payload = record.get("payload", {})
    kind = record.get("type")
    if kind in ("unit.issued", "unit.reissued"):
        return str(payload.get("holder"))
    if kind == "unit.resold":
        return str(payload.get("buyer"))
    if kind == "unit.transferred":
        return str(payload.get("recipient"))
    if kind == "unit.refunded":
        returned = payload.get("returned_to")
        return str(returned) if returned is not None else None
    return holder
