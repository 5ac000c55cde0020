"""Read API of the global log: checkpoints, entries, proofs.

Hashes are standard base64, as in C2SP checkpoints. Entries carry the exact
record bytes as a JSON string (docs/format.md §2), so a follower hashes
``record.encode()`` and never trusts a server-side hash.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from ledger.api.json_body import StrictJsonRoute
from ledger.api.problems import ApiProblem, invalid
from ledger.api.runtime import Runtime
from ledger.domain import limits
from ledger.domain.errors import InvariantError
from ledger.domain.model import format_timestamp, record_bytes
from ledger.service import utc_now
from ledger.service.proofs import ProofStoreError
from ledger.store.logstore import Leaf, StoredCheckpoint
from ledger.tlog import merkle
from ledger.tlog.c2sp import NoteError
from ledger.tlog.cosignature import verify_cosignature
from ledger.tlog.keys import NoteSignature
from ledger.tlog.policy import NONE, Policy, PolicyLog, format_policy
from ledger.tlog.signed_note import parse_note

ENTRIES_PAGE_MAX = 1_000

router = APIRouter(prefix="/log", tags=["log"], route_class=StrictJsonRoute)


async def runtime(request: Request) -> Runtime:
    # async: a plain attribute read, not worth a hop to the thread pool.
    found: Runtime = request.app.state.runtime
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Entry(BaseModel):
    index: int
    aggregate_id: str
    version: int
    record: str = Field(description="The event record: canonical JSON, hash input of the leaf")
    leaf_hash: str = Field(description="base64 SHA-256(0x00 || record)")


class Entries(BaseModel):
    start: int
    end: int
    entries: list[Entry]


class InclusionProof(BaseModel):
    index: int
    size: int
    leaf_hash: str
    root: str
    proof: list[str]


class ConsistencyProof(BaseModel):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


def _checked_size(latest: StoredCheckpoint | None, size: int | None, name: str) -> int:
    """A size a proof may be asked for: one the log has signed (``name``:
    the query parameter that gave it)."""
    signed = latest.size if latest is not None else 0
    if size is None:
        return signed
    if size > signed:
        message = f"the largest signed tree size is {signed}, not {size}"
        raise invalid("size-not-signed", message, (["query", name], message))
    return size


def proof_store_problem(error: ProofStoreError) -> ApiProblem:
    """The answer instead of a proof that does not verify (never sent)."""
    return ApiProblem(
        500,
        "proof-store-damaged",
        f"{error}; the proof is not sent. The server's stored tree is damaged "
        "(its operator is alerted; `ledger verify --db` locates the damage)",
    )


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="The latest signed checkpoint, with every cosignature received",
)
def latest_checkpoint(rt: RuntimeDep) -> PlainTextResponse:
    latest = rt.log.latest_checkpoint()
    if latest is None:
        raise ApiProblem(404, "no-checkpoint", "the log has not signed a checkpoint yet")
    # Signatures are the note's last lines: cosignatures simply follow the log's.
    lines = "".join(line + "\n" for line in rt.log.cosignatures(latest.size).values())
    return PlainTextResponse(latest.note + lines, media_type="text/plain; charset=utf-8")


@router.get(
    "/policy",
    response_class=PlainTextResponse,
    summary="The tlog-policy this server's checkpoints are made to meet: its log keys, "
    "the verifiers it was given and their quorum (the server's word: pin your own)",
)
def served_policy(rt: RuntimeDep) -> PlainTextResponse:
    return PlainTextResponse(
        format_policy(pinned_policy(rt)), media_type="text/plain; charset=utf-8"
    )


def pinned_policy(rt: Runtime) -> Policy:
    """The policy a page pins: the configured one's logs plus the log's own
    keys (a configured policy may name only verifiers), its witnesses,
    groups and quorum (``none`` without a policy); witness URLs left out
    (a verifier's address is not needed to check a cosignature)."""
    configured = rt.policy
    logs = list(configured.logs) if configured is not None else []
    known = {log.verifier.public_key for log in logs}
    own = rt.sealer.verifiers if rt.sealer is not None else []
    logs += [PolicyLog(v) for v in own if v.public_key not in known]
    if not logs:
        raise ApiProblem(404, "no-policy", "this server signs no checkpoints and names no log key")
    if configured is None:
        return Policy(logs=tuple(logs), witnesses={}, groups={}, quorum=NONE)
    return Policy(
        logs=tuple(logs),
        witnesses=dict(configured.witnesses),
        groups=dict(configured.groups),
        quorum=configured.quorum,
    )


@router.get(
    "/entries",
    response_model=Entries,
    summary="Leaves start <= index < end, with their exact record bytes",
)
def entries(
    rt: RuntimeDep,
    start: Annotated[int, Query(ge=0, le=limits.LOG_INDEX_MAX)],
    end: Annotated[int, Query(gt=0, le=limits.LOG_SIZE_MAX)],
) -> Entries:
    if end <= start:
        message = "end must be greater than start"
        raise invalid("invalid-range", message, (["query", "end"], message))
    if end - start > ENTRIES_PAGE_MAX:
        message = f"at most {ENTRIES_PAGE_MAX} entries per request"
        raise invalid("page-too-large", message, (["query", "end"], message))
    size = rt.log.size()
    leaves = rt.log.leaves(start, min(end, size))
    if not leaves:
        raise ApiProblem(404, "no-entries", f"the log has {size} entries")
    notifications = rt.ledger.event_store.recorder.select_notifications(
        start=leaves[0].position, limit=len(leaves)
    )
    out = []
    for leaf, stored in zip(leaves, notifications, strict=True):
        if stored.id != leaf.position:
            raise InvariantError("the log's leaves and the store disagree")
        record = record_bytes(
            str(stored.originator_id), stored.originator_version, stored.topic, bytes(stored.state)
        )
        out.append(
            Entry(
                index=leaf.index,
                aggregate_id=leaf.aggregate_id,
                version=leaf.version,
                record=record.decode(),
                leaf_hash=b64(leaf.hash),
            )
        )
    return Entries(start=start, end=start + len(out), entries=out)


@router.get(
    "/proof/inclusion",
    response_model=InclusionProof,
    summary="Inclusion proof of a leaf (by index, or by aggregate id and version)",
)
def inclusion(
    rt: RuntimeDep,
    index: Annotated[int | None, Query(ge=0, le=limits.LOG_INDEX_MAX)] = None,
    aggregate_id: str | None = None,
    version: Annotated[int | None, Query(ge=1, le=limits.EVENT_VERSION_MAX)] = None,
    size: Annotated[int | None, Query(ge=1, le=limits.LOG_SIZE_MAX)] = None,
) -> InclusionProof:
    latest = rt.log.latest_checkpoint()
    tree_size = _checked_size(latest, size, "size")
    named: Leaf | None = None  # the leaf looked up by the event it names
    if index is None:
        if aggregate_id is None or version is None:
            given = {"aggregate_id": aggregate_id, "version": version}
            missing = [name for name, value in given.items() if value is None]
            raise invalid(
                "invalid-input",
                "give index, or aggregate_id and version",
                *((["query", name], "required without index") for name in missing),
            )
        leaf = rt.log.leaf_of(aggregate_id, version)
        if leaf is None:
            raise ApiProblem(404, "not-in-log", f"{aggregate_id} v{version} is not in the log")
        index, named = leaf.index, leaf
    elif index >= tree_size and not rt.log.leaves(index, index + 1):
        # (Below a signed size every leaf exists: no need to look it up.)
        raise ApiProblem(404, "not-in-log", f"no leaf {index}")
    if index >= tree_size:
        message = f"leaf {index} is not under a signed checkpoint of size {tree_size}"
        raise invalid("not-yet-signed", message, (["query", "index"], message))
    if latest is None:
        raise InvariantError("a signed size without a checkpoint")
    # The leaf hash and its path in one read of the nodes not cached, verified
    # against the signed root before anything is sent.
    event_leaf = None if named is None else _event_leaf(rt, named)
    try:
        checked = rt.proofs.inclusion(index, tree_size, latest, leaf=event_leaf)
    except ProofStoreError as error:
        raise proof_store_problem(error) from None
    return InclusionProof(
        index=index,
        size=tree_size,
        leaf_hash=b64(checked.leaf),
        root=b64(checked.root),
        proof=[b64(h) for h in checked.proof],
    )


def _event_leaf(rt: Runtime, leaf: Leaf) -> bytes:
    """The leaf hash of the event a ``tlog_leaves`` row names, from the event
    itself: a row naming another event gives a proof of the wrong leaf."""
    stored = rt.ledger.event_store.recorder.select_notifications(start=leaf.position, limit=1)
    if (
        not stored
        or stored[0].id != leaf.position
        or str(stored[0].originator_id) != leaf.aggregate_id
        or stored[0].originator_version != leaf.version
    ):
        raise proof_store_problem(
            rt.proofs.damaged(
                f"tlog_leaves row {leaf.index} names {leaf.aggregate_id} v{leaf.version} at "
                f"position {leaf.position}, which holds another event"
            )
        )
    event = stored[0]
    return merkle.leaf_hash(
        record_bytes(
            str(event.originator_id), event.originator_version, event.topic, bytes(event.state)
        )
    )


@router.get(
    "/proof/consistency",
    response_model=ConsistencyProof,
    summary="Consistency proof between two signed tree sizes",
)
def consistency(
    rt: RuntimeDep,
    old: Annotated[int, Query(ge=1, le=limits.LOG_SIZE_MAX)],
    new: Annotated[int | None, Query(ge=1, le=limits.LOG_SIZE_MAX)] = None,
) -> ConsistencyProof:
    latest = rt.log.latest_checkpoint()
    new_size = _checked_size(latest, new, "new")
    if old > new_size:
        message = f"old size {old} exceeds new size {new_size}"
        raise invalid("invalid-range", message, (["query", "old"], message))
    if latest is None:
        raise InvariantError("a signed size without a checkpoint")
    try:
        checked = rt.proofs.consistency(old, new_size, latest)
    except ProofStoreError as error:
        raise proof_store_problem(error) from None
    return ConsistencyProof(
        old_size=old,
        new_size=new_size,
        old_root=b64(checked.old_root),
        new_root=b64(checked.new_root),
        proof=[b64(h) for h in checked.proof],
    )


class Cosignature(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    size: int = Field(ge=1, le=limits.LOG_SIZE_MAX)
    line: str = Field(max_length=1_000, description="A C2SP cosignature line: — <name> <b64>")


@router.post(
    "/cosignatures",
    status_code=201,
    summary="A verifier node hands in its cosignature of a checkpoint",
)
def add_cosignature(rt: RuntimeDep, cosignature: Cosignature) -> dict[str, object]:
    if rt.policy is None:
        raise ApiProblem(403, "no-witnesses", "this ledger has no policy naming verifiers")
    try:
        signature = NoteSignature.parse_line(cosignature.line)
    except NoteError as error:
        raise invalid("invalid-input", f"line: {error}", (["body", "line"], str(error))) from None
    witness = rt.policy.witnesses.get(signature.name)
    if witness is None or witness.key_id != signature.key_id:
        raise ApiProblem(
            403,
            "unknown-witness",
            f"{signature.name!r} is not a verifier this ledger's policy names",
        )
    stored = rt.log.checkpoint(cosignature.size)
    if stored is None:
        raise ApiProblem(404, "no-checkpoint", f"no checkpoint of size {cosignature.size}")
    try:
        verify_cosignature(parse_note(stored.note).text, signature, witness)
    except NoteError as error:
        raise ApiProblem(403, "bad-cosignature", str(error)) from None
    rt.log.add_cosignature(
        cosignature.size, signature.name, cosignature.line, format_timestamp(utc_now())
    )
    return {"size": cosignature.size, "cosigner": signature.name}
