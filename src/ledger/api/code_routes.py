"""The redemption-code commands: import, delivery, redemption (see
:mod:`ledger.api.command_routes` for what every command shares)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Response

from ledger.api import models
from ledger.api.auth import check_creator, require
from ledger.api.command_edge import (
    ANSWER,
    COMMAND_RESPONSES,
    CreatorOrAdmin,
    GoodId,
    IdempotencyKey,
    TierPath,
    UnitId,
    answered,
    creators_of,
    require_key,
    router,
    scope_of,
)
from ledger.api.log_routes import RuntimeDep
from ledger.api.problems import ApiProblem
from ledger.store.apikeys import Principal, Role

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
    check_creator(who, creators_of(rt, good_id))
    code_range = body.code_range.model_dump() if body.code_range is not None else None
    return answered(
        response,
        rt.ledger.import_codes(
            good_id,
            tier,
            codes=body.codes,
            code_range=code_range,
            idempotency_key=require_key(key),
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
        idempotency_key=require_key(key),
        scope=scope_of(who),
        channel=who.subject,
    )
    response.headers["Cache-Control"] = "no-store"
    return answered(response, answer, status=200)


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
    return answered(
        response,
        rt.ledger.redeem_code(
            body.code,
            redeemer=body.redeemer,
            idempotency_key=require_key(key),
            scope=scope_of(who),
            creator=creator,
        ),
    )
