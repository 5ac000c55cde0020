"""The commands on a tier's stock beside its sales: holds (reserve, commit,
release), channels' pools (allot, return, move), rates and waitlists (see
:mod:`ledger.api.command_routes` for what every command shares)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Path, Response

from ledger.api import models
from ledger.api.auth import check_channel, check_creator, require
from ledger.api.command_edge import (
    ANSWER,
    COMMAND_RESPONSES,
    ChannelOrAdmin,
    CreatorOrAdmin,
    GoodId,
    IdempotencyKey,
    TierPath,
    answered,
    creators_of,
    own_channel,
    require_key,
    router,
    scope_of,
)
from ledger.api.log_routes import RuntimeDep
from ledger.domain import limits
from ledger.domain.money import Money
from ledger.store.apikeys import Principal, Role

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
    return answered(
        response,
        rt.ledger.reserve(
            good_id,
            tier,
            channel=body.channel,
            quantity=body.quantity,
            ttl_seconds=body.ttl_seconds,
            idempotency_key=require_key(key),
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
    return answered(
        response,
        rt.ledger.commit_hold(
            good_id,
            tier,
            hold_id,
            buyer=body.buyer,
            quantity=body.quantity,
            unit_price=Money(body.unit_price.amount, body.unit_price.currency),
            idempotency_key=require_key(key),
            scope=scope_of(who),
            channel=own_channel(who),
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
    return answered(
        response,
        rt.ledger.release_hold(
            good_id,
            tier,
            hold_id,
            idempotency_key=require_key(key),
            scope=scope_of(who),
            channel=own_channel(who),
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
    check_creator(who, creators_of(rt, good_id))
    return answered(
        response,
        rt.ledger.allot_pool(
            good_id,
            tier,
            channel=channel,
            quantity=body.quantity,
            overflow=body.overflow,
            idempotency_key=require_key(key),
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
        check_creator(who, creators_of(rt, good_id))
    return answered(
        response,
        rt.ledger.return_pool(
            good_id,
            tier,
            channel=channel,
            quantity=body.quantity,
            idempotency_key=require_key(key),
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
    check_creator(who, creators_of(rt, good_id))
    return answered(
        response,
        rt.ledger.move_pool(
            good_id,
            tier,
            from_channel=body.from_channel,
            to_channel=body.to_channel,
            quantity=body.quantity,
            idempotency_key=require_key(key),
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
    check_creator(who, creators_of(rt, good_id))
    return answered(
        response,
        rt.ledger.set_rate(
            good_id,
            tier,
            channel=channel,
            per_minute=body.per_minute,
            idempotency_key=require_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/goods/{good_id}/tiers/{tier}/prices",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Set a tier's price schedule by sell-through (steps by units sold or by "
    "time); null lifts it",
)
def set_prices(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: TierPath,
    body: models.SetPrices,
    who: CreatorOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_creator(who, creators_of(rt, good_id))
    steps = None
    if body.steps is not None:
        steps = [step.model_dump(mode="json", exclude_none=True) for step in body.steps]
    return answered(
        response,
        rt.ledger.set_prices(
            good_id, tier, steps=steps, idempotency_key=require_key(key), scope=scope_of(who)
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
    return answered(
        response,
        rt.ledger.join_waitlist(
            good_id,
            tier,
            buyer=body.buyer,
            channel=body.channel,
            quantity=body.quantity,
            idempotency_key=require_key(key),
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
    return answered(
        response,
        rt.ledger.leave_waitlist(
            good_id,
            tier,
            entry_id,
            idempotency_key=require_key(key),
            scope=scope_of(who),
            channel=own_channel(who),
        ),
    )


# -- redemption codes ------------------------------------------------------------
# A code's text travels in two bodies only: the import (and the redemption)
# the caller sends, and the delivery answered to the channel that sold the
# unit. No other answer, problem or log line names it: events, idempotency
# records and answers carry its ref (a keyed hash) instead.
