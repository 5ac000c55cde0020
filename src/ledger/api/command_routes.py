"""The commands: mint, derive, sell, resell, restock, refund, register a channel;
holds, pools, rates and waitlists; redemption codes (import, delivery, redemption).

Every POST takes an ``Idempotency-Key`` header (Stripe's semantics): the
same key and body return the first response again, byte for byte, marked
``Idempotent-Replayed: true``; the same key with another body is a 409
``idempotency-key-reused`` problem; concurrent duplicates have one effect.
Keys are scoped to the caller (its role and subject), so two channels'
keys never collide. A refused command (sold out, not the holder...)
records nothing: retrying its key decides it afresh.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from ledger.api import models
from ledger.api.auth import check_channel, check_creator, require
from ledger.api.json_body import StrictJsonRoute
from ledger.api.log_routes import RuntimeDep
from ledger.api.problems import PROBLEM_BASE, ApiProblem, domain_problem, unavailable_document
from ledger.api.runtime import Runtime
from ledger.domain import canonical, limits
from ledger.domain.errors import LedgerError
from ledger.domain.money import Money
from ledger.service import Replayed
from ledger.store.apikeys import Principal, Role
from ledger.store.availability import unavailable_reason

router = APIRouter(tags=["commands"], route_class=StrictJsonRoute)
logger = logging.getLogger("ledger.api")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=limits.IDEMPOTENCY_KEY_CHARS_MAX,
        description="Required. A unique key per intended effect (e.g. a UUID); "
        "retrying with the same key and body returns the first response.",
    ),
]
GoodId = Annotated[UUID, Path(description="The good's id")]
UnitId = Annotated[UUID, Path(description="The unit's id")]
TierPath = Annotated[str, Path(pattern=limits.TIER_NAME_PATTERN, max_length=32)]

Admin = Annotated[Principal, require(Role.ADMIN)]
CreatorOrAdmin = Annotated[Principal, require(Role.CREATOR)]
ChannelOrAdmin = Annotated[Principal, require(Role.CHANNEL)]

COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Idempotency-Key header missing"},
    401: {"description": "No API key, or an invalid or revoked one"},
    403: {"description": "The key's role or scope does not allow this"},
    404: {"description": "A good, tier, unit or channel named does not exist"},
    409: {"description": "A business rule refused it, or the key was reused with another body"},
    413: {"description": "Body too large"},
    422: {"description": "Malformed input"},
}


def scope_of(principal: Principal) -> str:
    """The idempotency scope: the caller's identity, so keys of different
    callers never meet. Fits the domain's identifier bounds however long
    the subject is."""
    if principal.subject is None:
        return principal.role.value
    scope = f"{principal.role.value}:{principal.subject}"
    if len(scope) > limits.SCOPE_CHARS_MAX:
        digest = hashlib.sha256(principal.subject.encode()).hexdigest()[:40]
        scope = f"{principal.role.value}:sha256-{digest}"
    return scope


def _key(key: str | None) -> str:
    if key is None:
        raise ApiProblem(
            400,
            "idempotency-key-required",
            "every POST needs an Idempotency-Key header (e.g. a fresh UUID)",
        )
    return key


ANSWER = dict[str, Any]  # documented only: an answer is returned as an AnswerJSON


class AnswerJSON(JSONResponse):
    """A command's answer: the canonical JSON (RFC 8785: sorted keys, no
    spaces) of its result. The command record stores the result in that same
    form, so the first answer and every replay -- from this process's cache
    or read back from the store after a restart -- are the same bytes."""

    def render(self, content: Any) -> bytes:
        return canonical.encode(content)


def _answer(response: Response, result: dict[str, Any], *, status: int = 201) -> Response:
    """The answer to a command, first or replayed: the same status, body
    bytes and headers (those set on ``response``), and
    ``Idempotent-Replayed: true`` on a replay. Returned as a response, so
    FastAPI neither validates nor re-encodes it."""
    answer = AnswerJSON(dict(result), status_code=status, headers=dict(response.headers))
    if isinstance(result, Replayed):
        answer.headers["Idempotent-Replayed"] = "true"
    return answer


@router.post(
    "/channels",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Register a channel (shop, livestream room, partner platform)",
)
def register_channel(
    rt: RuntimeDep,
    body: models.RegisterChannel,
    who: Admin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    return _answer(
        response,
        rt.ledger.register_channel(
            body.channel, body.name, body.fee_bps, idempotency_key=_key(key), scope=scope_of(who)
        ),
    )


@router.post(
    "/goods",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Mint a good: its definition is fixed from now on",
)
def mint(
    rt: RuntimeDep,
    body: models.Mint,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_creator(who, [c.id for c in body.spec.creators])
    return _answer(
        response,
        rt.ledger.mint(body.spec.to_domain(), idempotency_key=_key(key), scope=scope_of(who)),
    )


@router.post(
    "/goods/{good_id}/variants",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Derive a limited variant under the master's variant rules",
)
def derive_variant(
    rt: RuntimeDep,
    good_id: GoodId,
    body: models.DeriveVariant,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_creator(who, _creators(rt, good_id))
    return _answer(
        response,
        rt.ledger.derive_variant(
            good_id, body.spec.to_domain(), idempotency_key=_key(key), scope=scope_of(who)
        ),
    )


NDJSON = "application/x-ndjson"


@router.post(
    "/goods/{good_id}/tiers/{tier}/sales",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES
    | {
        200: {
            "content": {NDJSON: {}},
            "description": (
                'With Accept: application/x-ndjson: a line {"queued": {"position": n}} '
                'at once, then {"status", "result"} or {"status", "problem"}'
            ),
        }
    },
    summary="Primary sale of units of one tier (with Accept: application/x-ndjson, "
    "the buyer's place in the queue comes first, then the outcome)",
)
def sell(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    body: models.Sell,
    who: ChannelOrAdmin,
    response: Response,
    request: Request,
    key: IdempotencyKey = None,
) -> Any:
    check_channel(who, body.channel)
    idempotency_key = _key(key)

    def run(on_queued: Callable[[int], object] | None = None) -> dict[str, Any]:
        return rt.ledger.sell(
            good_id,
            tier,
            buyer=body.buyer,
            channel=body.channel,
            quantity=body.quantity,
            unit_price=Money(body.unit_price.amount, body.unit_price.currency),
            idempotency_key=idempotency_key,
            scope=scope_of(who),
            on_queued=on_queued,
        )

    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(
            _queued_outcome(run, request.url.path),
            media_type=NDJSON,
            headers={"Cache-Control": "no-store"},
        )
    return _answer(response, run())


def _queued_outcome(
    run: Callable[[Callable[[int], object]], dict[str, Any]], instance: str
) -> Iterator[bytes]:
    """Lines of a queued sale: its place in the queue as soon as it has one,
    then its outcome (a result, or a problem document)."""
    lines: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            lines.put(("done", run(lambda position: lines.put(("queued", position)))))
        except LedgerError as error:
            lines.put(("problem", domain_problem(error, instance)))
        except Exception as error:  # reported like the API's 503 or 500, never a traceback
            reason = unavailable_reason(error)
            if reason is not None:
                lines.put(("problem", unavailable_document(error, reason, instance)))
                return
            logger.exception("queued sale failed on %s", instance)
            lines.put(
                (
                    "problem",
                    {
                        "type": PROBLEM_BASE + "internal-error",
                        "title": "Internal error",
                        "status": 500,
                        "detail": "the server could not complete the request; "
                        "nothing acknowledged is lost",
                        "instance": instance,
                    },
                )
            )

    threading.Thread(target=work, name="queued-sale", daemon=True).start()
    while True:
        kind, value = lines.get()
        if kind == "queued":
            yield orjson.dumps({"queued": {"position": value}}) + b"\n"
        elif kind == "done":
            yield (
                orjson.dumps(
                    {"status": 201, "replayed": isinstance(value, Replayed), "result": dict(value)}
                )
                + b"\n"
            )
            return
        else:
            yield orjson.dumps({"status": value["status"], "problem": value}) + b"\n"
            return


@router.post(
    "/units/{unit_id}/resales",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Resale: the holder sells a transferable unit on; royalties are split",
)
def resell(
    rt: RuntimeDep,
    unit_id: UnitId,
    body: models.Resell,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_channel(who, body.channel)
    return _answer(
        response,
        rt.ledger.resell(
            unit_id,
            seller=body.seller,
            buyer=body.buyer,
            channel=body.channel,
            price=Money(body.price.amount, body.price.currency),
            idempotency_key=_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/goods/{good_id}/tiers/{tier}/restocks",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Restock a restockable tier, up to its lifetime cap",
)
def restock(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    body: models.Restock,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_creator(who, _creators(rt, good_id))
    return _answer(
        response,
        rt.ledger.restock(
            good_id, tier, body.quantity, idempotency_key=_key(key), scope=scope_of(who)
        ),
    )


@router.post(
    "/units/{unit_id}/refunds",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Refund the holder's latest acquisition of a unit "
    "(a channel refunds only what it sold)",
)
def refund(
    rt: RuntimeDep,
    unit_id: UnitId,
    body: models.Refund,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    return _answer(
        response,
        rt.ledger.refund(
            unit_id,
            reason=body.reason,
            idempotency_key=_key(key),
            scope=scope_of(who),
            channel=_own_channel(who),
        ),
    )


HoldId = Annotated[UUID, Path(description="The hold's id (hold_id)")]


@router.post(
    "/goods/{good_id}/tiers/{tier}/holds",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Reserve units for a while (the inventory gateway): nobody else can "
    "buy them until the hold is committed, released or expires",
)
def reserve(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    body: models.Reserve,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_channel(who, body.channel)
    return _answer(
        response,
        rt.ledger.reserve(
            good_id,
            tier,
            channel=body.channel,
            quantity=body.quantity,
            ttl_seconds=body.ttl_seconds,
            idempotency_key=_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/goods/{good_id}/tiers/{tier}/holds/{hold_id}/commit",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="The payment arrived: sell all or part of the hold (the rest returns). "
    "After expiry: a late sale if stock remains, else a refund owed",
)
def commit_hold(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    hold_id: HoldId,
    body: models.CommitHold,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    return _answer(
        response,
        rt.ledger.commit_hold(
            good_id,
            tier,
            hold_id,
            buyer=body.buyer,
            quantity=body.quantity,
            unit_price=Money(body.unit_price.amount, body.unit_price.currency),
            idempotency_key=_key(key),
            scope=scope_of(who),
            channel=_own_channel(who),
        ),
    )


@router.post(
    "/goods/{good_id}/tiers/{tier}/holds/{hold_id}/release",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Give the hold's units back now",
)
def release_hold(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    hold_id: HoldId,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
    body: models.ReleaseHold | None = None,
) -> Response:
    del body  # optional and empty: the key says it all
    return _answer(
        response,
        rt.ledger.release_hold(
            good_id,
            tier,
            hold_id,
            idempotency_key=_key(key),
            scope=scope_of(who),
            channel=_own_channel(who),
        ),
    )


ChannelPath = Annotated[
    str, Path(min_length=1, max_length=limits.ID_CHARS_MAX, pattern=limits.IDENTIFIER_PATTERN)
]


@router.post(
    "/goods/{good_id}/tiers/{tier}/pools/{channel}/allot",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Set units of the shared stock aside for a channel (e.g. a livestream "
    "room); it sells from its pool first",
)
def allot_pool(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    channel: ChannelPath,
    body: models.Allot,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_creator(who, _creators(rt, good_id))
    return _answer(
        response,
        rt.ledger.allot_pool(
            good_id,
            tier,
            channel=channel,
            quantity=body.quantity,
            overflow=body.overflow,
            idempotency_key=_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/goods/{good_id}/tiers/{tier}/pools/{channel}/return",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Give unsold units of a channel's pool back to the shared stock (the "
    "good's creator, or the channel itself)",
)
def return_pool(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    channel: ChannelPath,
    body: models.ReturnPool,
    who: Annotated[Principal, require(Role.CREATOR, Role.CHANNEL)],
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    if who.role is Role.CHANNEL:
        check_channel(who, channel)
    else:
        check_creator(who, _creators(rt, good_id))
    return _answer(
        response,
        rt.ledger.return_pool(
            good_id,
            tier,
            channel=channel,
            quantity=body.quantity,
            idempotency_key=_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/goods/{good_id}/tiers/{tier}/pools/move",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Move unsold units from one channel's pool to another's, in one step",
)
def move_pool(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    body: models.MovePool,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_creator(who, _creators(rt, good_id))
    return _answer(
        response,
        rt.ledger.move_pool(
            good_id,
            tier,
            from_channel=body.from_channel,
            to_channel=body.to_channel,
            quantity=body.quantity,
            idempotency_key=_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/goods/{good_id}/tiers/{tier}/rates/{channel}",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Cap a channel's sales of a tier per minute (anti-bot); null lifts it",
)
def set_rate(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    channel: ChannelPath,
    body: models.SetRate,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_creator(who, _creators(rt, good_id))
    return _answer(
        response,
        rt.ledger.set_rate(
            good_id,
            tier,
            channel=channel,
            per_minute=body.per_minute,
            idempotency_key=_key(key),
            scope=scope_of(who),
        ),
    )


EntryId = Annotated[UUID, Path(description="The waitlist entry's id (entry_id)")]


@router.post(
    "/goods/{good_id}/tiers/{tier}/waitlist",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Join the waitlist of a sold-out, restockable tier; a restock holds "
    "units for waiting buyers first, in order (the hold id is the entry id)",
)
def join_waitlist(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    body: models.JoinWaitlist,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_channel(who, body.channel)
    return _answer(
        response,
        rt.ledger.join_waitlist(
            good_id,
            tier,
            buyer=body.buyer,
            channel=body.channel,
            quantity=body.quantity,
            idempotency_key=_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/goods/{good_id}/tiers/{tier}/waitlist/{entry_id}/leave",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Leave the waitlist",
)
def leave_waitlist(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    entry_id: EntryId,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    return _answer(
        response,
        rt.ledger.leave_waitlist(
            good_id,
            tier,
            entry_id,
            idempotency_key=_key(key),
            scope=scope_of(who),
            channel=_own_channel(who),
        ),
    )


# -- redemption codes ------------------------------------------------------------
# A code's text travels in two bodies only: the import (and the redemption)
# the caller sends, and the delivery answered to the channel that sold the
# unit. No other answer, problem or log line names it: events, idempotency
# records and answers carry its ref (a keyed hash) instead.

ChannelOnly = Annotated[Principal, require(Role.CHANNEL, admin=False)]


@router.post(
    "/goods/{good_id}/tiers/{tier}/codes",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES
    | {503: {"description": ("codes-unavailable: this server has no code keyring")}},
    summary="Import a batch of redemption codes into a tier of a redemption-code "
    "good: a list, or a range (all or nothing; a code seen before anywhere "
    "refuses the batch)",
)
def import_codes(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    body: models.ImportCodes,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_creator(who, _creators(rt, good_id))
    code_range = body.code_range.model_dump() if body.code_range is not None else None
    return _answer(
        response,
        rt.ledger.import_codes(
            good_id,
            tier,
            codes=body.codes,
            code_range=code_range,
            idempotency_key=_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/units/{unit_id}/code-deliveries",
    status_code=200,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES
    | {
        200: {
            "description": "The unit's code, with first_delivery (false when it "
            "was delivered before); sent with Cache-Control: "
            "no-store"
        },
        403: {
            "description": "Not a channel key, or not the channel of the unit's "
            "current acquisition (an admin key is refused too)"
        },
        503: {"description": "codes-unavailable: this server has no code keyring"},
    },
    summary="Reveal a unit's redemption code to its holder, through the channel "
    "that sold it (recorded once; asking again shows the same code)",
)
def deliver_code(
    rt: RuntimeDep,
    unit_id: UnitId,
    body: models.DeliverCode,
    who: ChannelOnly,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    if who.role is not Role.CHANNEL or who.subject is None:  # require() already saw to it
        raise ApiProblem(403, "forbidden", "only the channel that sold a unit sees its code")
    answer = rt.ledger.deliver_code(
        unit_id,
        holder=body.holder,
        idempotency_key=_key(key),
        scope=scope_of(who),
        channel=who.subject,
    )
    response.headers["Cache-Control"] = "no-store"
    return _answer(response, answer, status=200)


@router.post(
    "/code-redemptions",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES
    | {
        404: {
            "description": "code-not-found: never imported, or (for a creator "
            "key) a code of another creator's good"
        },
        503: {"description": "codes-unavailable: this server has no code keyring"},
    },
    summary="Redeem a delivered redemption code, once (a creator redeems the codes "
    "of its own goods)",
)
def redeem_code(
    rt: RuntimeDep,
    body: models.RedeemCode,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    creator = who.subject if who.role is Role.CREATOR else None
    return _answer(
        response,
        rt.ledger.redeem_code(
            body.code,
            redeemer=body.redeemer,
            idempotency_key=_key(key),
            scope=scope_of(who),
            creator=creator,
        ),
    )


def _own_channel(who: Principal) -> str | None:
    """A channel key acts on its own holds only (checked inside the decision)."""
    return who.subject if who.role is Role.CHANNEL else None


def _creators(rt: Runtime, good_id: UUID) -> list[str]:
    """The good's creators (a missing good is a 404 problem)."""
    return [c.id for c in rt.ledger.good(good_id).spec.creators]
