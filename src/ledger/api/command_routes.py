"""The commands: mint, derive, sell, resell, restock, refund, register a channel.
The holds, pools, rates and waitlists are in :mod:`ledger.api.hold_routes`, the
holders (accounts, keys, moves, transfers) in :mod:`ledger.api.account_routes`, the
redemption codes (import, delivery, redemption) in :mod:`ledger.api.code_routes`;
all add their routes to one router (:mod:`ledger.api.command_edge`'s, this
module's ``router``), and importing this module imports the others.

Every POST takes an ``Idempotency-Key`` header (Stripe's semantics): the
same key and body return the first response again, byte for byte, marked
``Idempotent-Replayed: true``; the same key with another body is a 409
``idempotency-key-reused`` problem; concurrent duplicates have one effect.
Keys are scoped to the caller (its role and subject), so two channels'
keys never collide. A refused command (sold out, not the holder...)
records nothing: retrying its key decides it afresh.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from ledger.api import models
from ledger.api.auth import check_channel, check_creator
from ledger.api.command_edge import (
    ANSWER,
    COMMAND_RESPONSES,
    Admin,
    AnswerJSON,
    ChannelOrAdmin,
    CreatorOrAdmin,
    GoodId,
    IdempotencyKey,
    TierPath,
    UnitId,
    answered,
    creators_of,
    own_channel,
    require_key,
    router,
    scope_of,
)
from ledger.api.log_routes import RuntimeDep
from ledger.api.problems import PROBLEM_BASE, domain_problem, unavailable_document
from ledger.domain.errors import LedgerError
from ledger.domain.money import Money
from ledger.service.answers import Sold
from ledger.store.availability import unavailable_reason

logger = logging.getLogger("ledger.api")

__all__ = ["AnswerJSON", "router", "scope_of"]


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
    return answered(
        response,
        rt.ledger.register_channel(
            body.channel,
            body.name,
            body.fee_bps,
            idempotency_key=require_key(key),
            scope=scope_of(who),
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
    return answered(
        response,
        rt.ledger.mint(
            body.spec.to_domain(), idempotency_key=require_key(key), scope=scope_of(who)
        ),
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
    check_creator(who, creators_of(rt, good_id))
    return answered(
        response,
        rt.ledger.derive_variant(
            good_id, body.spec.to_domain(), idempotency_key=require_key(key), scope=scope_of(who)
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
    idempotency_key = require_key(key)

    def run(on_queued: Callable[[int], object] | None = None) -> Sold:
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
            # The sale runs on a thread of its own: it takes this request's
            # context (its actor: who the sale's events name) along.
            _queued_outcome(run, request.url.path, contextvars.copy_context()),
            media_type=NDJSON,
            headers={"Cache-Control": "no-store"},
        )
    return answered(response, run())


def _queued_outcome(
    run: Callable[[Callable[[int], object]], Sold], instance: str, context: contextvars.Context
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

    threading.Thread(target=context.run, args=(work,), name="queued-sale", daemon=True).start()
    while True:
        kind, value = lines.get()
        if kind == "queued":
            yield orjson.dumps({"queued": {"position": value}}) + b"\n"
        elif kind == "done":
            yield (
                orjson.dumps({"status": 201, "replayed": value.replayed, "result": value.to_json()})
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
    return answered(
        response,
        rt.ledger.resell(
            unit_id,
            seller=body.seller,
            buyer=body.buyer,
            channel=body.channel,
            price=Money(body.price.amount, body.price.currency),
            idempotency_key=require_key(key),
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
    check_creator(who, creators_of(rt, good_id))
    return answered(
        response,
        rt.ledger.restock(
            good_id, tier, body.quantity, idempotency_key=require_key(key), scope=scope_of(who)
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
    return answered(
        response,
        rt.ledger.refund(
            unit_id,
            reason=body.reason,
            idempotency_key=require_key(key),
            scope=scope_of(who),
            channel=own_channel(who),
        ),
    )


# Then the holds', pools', rates' and waitlists' routes, and the codes', on
# the same router (after these, as in the API's schema before the split).
from ledger.api import hold_routes  # noqa: E402, F401 - registers its routes

# isort: split
from ledger.api import listing_routes  # noqa: E402, F401 - registers its routes

# isort: split
from ledger.api import code_routes  # noqa: E402, F401 - registers its routes

# isort: split
from ledger.api import account_routes  # noqa: E402, F401 - registers its routes
