"""Holders: accounts, their keys, moving a unit to another channel and
transfers without a price (docs/api.md "Holders and channels"). A channel
acts only for the accounts it serves and only on units held through it:
the edge holds a channel key to its own channel (403), the domain refuses
the rest (403 ``account-not-served``, ``unit-not-in-custody``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Response

from ledger.api import models
from ledger.api.auth import check_channel, require
from ledger.api.command_edge import (
    ANSWER,
    COMMAND_RESPONSES,
    ChannelOrAdmin,
    IdempotencyKey,
    UnitId,
    answered,
    require_key,
    router,
    scope_of,
)
from ledger.api.log_routes import RuntimeDep
from ledger.api.problems import ApiProblem
from ledger.domain import limits
from ledger.store.apikeys import Principal, Role

AccountPath = Annotated[
    str,
    Path(
        pattern=limits.IDENTIFIER_PATTERN, max_length=limits.ID_CHARS_MAX, description="An account"
    ),
]


@router.post(
    "/accounts",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Open an account: the channel onboards a holder and serves them",
    tags=["holders"],
)
def open_account(
    rt: RuntimeDep,
    body: models.OpenAccount,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_channel(who, body.channel)
    return answered(
        response,
        rt.ledger.open_account(
            body.account,
            channel=body.channel,
            idempotency_key=require_key(key),
            scope=scope_of(who),
        ),
    )


@router.get(
    "/accounts/{account}",
    summary="An account: the channels serving it and the holder's keys in force",
    tags=["holders"],
)
def get_account(
    rt: RuntimeDep,
    account: AccountPath,
    who: Annotated[Principal, require(Role.CHANNEL, Role.AUDITOR)],
) -> dict[str, Any]:
    found = rt.ledger.account(account)
    if who.role is Role.CHANNEL and who.subject not in found.channels:
        raise ApiProblem(
            403, "account-not-served", f"channel {who.subject!r} does not serve {account!r}"
        )
    return {
        "account": found.account,
        "channels": list(found.channels),
        "keys": [{"key_id": key_id, "public_key": text} for key_id, text in found.keys.items()],
    }


@router.post(
    "/accounts/{account}/keys",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Register the holder's Ed25519 public key (through a channel serving them)",
    tags=["holders"],
)
def register_key(
    rt: RuntimeDep,
    account: AccountPath,
    body: models.HolderKeyBody,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_channel(who, body.channel)
    return answered(
        response,
        rt.ledger.register_holder_key(
            account,
            public_key=body.public_key,
            channel=body.channel,
            idempotency_key=require_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/accounts/{account}/keys/{key_id}/revocation",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Revoke a holder's key: its authorizations move nothing from now on",
    tags=["holders"],
)
def revoke_key(
    rt: RuntimeDep,
    account: AccountPath,
    key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")],
    body: models.RevokeHolderKey,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_channel(who, body.channel)
    return answered(
        response,
        rt.ledger.revoke_holder_key(
            account,
            key_id=key_id,
            channel=body.channel,
            idempotency_key=require_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/units/{unit_id}/moves",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Take a unit to another channel: the holding channel's hand-off, or the "
    "holder's signed authorization presented by the new channel",
    tags=["holders"],
)
def move_unit(
    rt: RuntimeDep,
    unit_id: UnitId,
    body: models.MoveUnit,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_channel(who, body.channel)
    authorization = None if body.authorization is None else body.authorization.model_dump()
    return answered(
        response,
        rt.ledger.move_unit(
            unit_id,
            holder=body.holder,
            to_channel=body.to_channel,
            channel=body.channel,
            authorization=authorization,
            idempotency_key=require_key(key),
            scope=scope_of(who),
        ),
    )


@router.post(
    "/units/{unit_id}/transfers",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Give a unit without a price (a gift, an inheritance, between one's own "
    "accounts): no royalty is owed",
    tags=["holders"],
)
def transfer_unit(
    rt: RuntimeDep,
    unit_id: UnitId,
    body: models.TransferUnit,
    who: ChannelOrAdmin,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    check_channel(who, body.channel)
    return answered(
        response,
        rt.ledger.transfer_unit(
            unit_id,
            giver=body.giver,
            recipient=body.recipient,
            channel=body.channel,
            kind=body.kind,
            idempotency_key=require_key(key),
            scope=scope_of(who),
        ),
    )
