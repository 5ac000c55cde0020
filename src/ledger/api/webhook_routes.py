"""Webhook subscriptions (docs/webhooks.md): a channel or creator key (or
an admin) registers an endpoint for the event types its role may read,
gets the signing secret in that answer, rotates it, pauses, resumes,
deletes, reads its delivery log, replays from a log position or a time and
pings. Only the owner and admins see a subscription: anyone else is told
it does not exist (404)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from ledger.api.auth import require
from ledger.api.command_edge import (
    ANSWER,
    COMMAND_RESPONSES,
    IdempotencyKey,
    answered,
    require_key,
    scope_of,
)
from ledger.api.json_body import StrictJsonRoute
from ledger.api.log_routes import RuntimeDep
from ledger.api.models import Strict
from ledger.api.problems import ApiProblem
from ledger.api.query_routes import READ_RESPONSES
from ledger.api.runtime import Runtime
from ledger.domain import limits
from ledger.domain.subscription import TYPES_MAX, URL_CHARS_MAX
from ledger.store.apikeys import Principal, Role
from ledger.webhooks.subscriptions import Webhooks

router = APIRouter(tags=["webhooks"], route_class=StrictJsonRoute)

Owner = Annotated[Principal, require(Role.CHANNEL, Role.CREATOR)]
SubscriptionId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{32}$", description="The subscription's id")
]


class RegisterWebhook(Strict):
    url: str = Field(max_length=URL_CHARS_MAX, description="http(s) endpoint")
    types: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=TYPES_MAX, description="event types to deliver"
    )


class RotateSecret(Strict):
    grace_seconds: int | None = Field(
        default=None,
        ge=0,
        le=limits.WEBHOOK_GRACE_SECONDS_MAX,
        description="how long the old secret keeps signing (default 24 h)",
    )


class Replay(Strict):
    from_position: int | None = Field(
        default=None, ge=0, le=limits.JSON_INTEGER_MAX, description="a store position"
    )
    since: datetime | None = Field(default=None, description="or a moment, with its offset")


def _hooks(rt: Runtime) -> Webhooks:
    if rt.webhooks is None:
        raise ApiProblem(503, "webhooks-unavailable", "this server runs without webhooks")
    return rt.webhooks


def _caller(who: Principal) -> tuple[str, str | None]:
    return who.role.value, who.subject


@router.post(
    "/webhooks",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Subscribe an endpoint to event types; the answer holds the signing secret",
)
def register_webhook(
    rt: RuntimeDep,
    body: RegisterWebhook,
    who: Owner,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    answer = _hooks(rt).register(
        _caller(who),
        body.url,
        list(body.types),
        idempotency_key=require_key(key),
        scope=scope_of(who),
    )
    return answered(response, answer)


@router.get("/webhooks", responses=READ_RESPONSES, summary="The caller's subscriptions")
def list_webhooks(rt: RuntimeDep, who: Owner) -> dict[str, Any]:
    return {"webhooks": _hooks(rt).listing(_caller(who))}


@router.get("/webhooks/{subscription_id}", responses=READ_RESPONSES, summary="One subscription")
def get_webhook(rt: RuntimeDep, subscription_id: SubscriptionId, who: Owner) -> dict[str, Any]:
    return rt.ledger.webhook(subscription_id, _caller(who)).to_json()


@router.post(
    "/webhooks/{subscription_id}/rotation",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="A new signing secret (in the answer); the old one signs too until the grace ends",
)
def rotate_webhook_secret(
    rt: RuntimeDep,
    subscription_id: SubscriptionId,
    body: RotateSecret,
    who: Owner,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    grace = None if body.grace_seconds is None else timedelta(seconds=body.grace_seconds)
    answer = _hooks(rt).rotate(
        subscription_id,
        _caller(who),
        grace,
        idempotency_key=require_key(key),
        scope=scope_of(who),
    )
    return answered(response, answer)


def _change(action: str, summary: str) -> None:
    @router.post(
        f"/webhooks/{{subscription_id}}/{action}",
        status_code=201,
        response_model=ANSWER,
        responses=COMMAND_RESPONSES,
        summary=summary,
        name=f"webhook_{action}",
    )
    def change(
        rt: RuntimeDep,
        subscription_id: SubscriptionId,
        who: Owner,
        response: Response,
        key: IdempotencyKey = None,
    ) -> Response:
        answer = _hooks(rt).change(
            {"deletion": "delete"}.get(action, action),
            subscription_id,
            _caller(who),
            idempotency_key=require_key(key),
            scope=scope_of(who),
        )
        return answered(response, answer)


_change("pause", "Stop delivering (events wait; nothing is lost)")
_change("resume", "Deliver again, from where it stopped (also after failing)")
_change("deletion", "Delete the subscription: nothing more is delivered")


@router.get(
    "/webhooks/{subscription_id}/deliveries",
    responses=READ_RESPONSES,
    summary="The delivery log: every attempt, newest first (status, latency, outcome)",
)
def deliveries(
    rt: RuntimeDep,
    subscription_id: SubscriptionId,
    who: Owner,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    return _hooks(rt).deliveries(
        subscription_id,
        _caller(who),
        before=None if cursor is None else int(cursor),
        limit=limit,
    )


@router.post(
    "/webhooks/{subscription_id}/replays",
    status_code=201,
    response_model=ANSWER,
    responses=COMMAND_RESPONSES,
    summary="Deliver again from a store position or a moment (the same webhook-ids)",
)
def replay(
    rt: RuntimeDep,
    subscription_id: SubscriptionId,
    body: Replay,
    who: Owner,
    response: Response,
    key: IdempotencyKey = None,
) -> Response:
    if (body.from_position is None) == (body.since is None):
        raise ApiProblem(422, "invalid-input", "give from_position or since, not both")
    if body.since is not None and body.since.tzinfo is None:
        raise ApiProblem(422, "invalid-input", "since needs an offset (e.g. Z)")
    answer = _hooks(rt).replay(
        subscription_id,
        _caller(who),
        from_position=body.from_position,
        since=body.since,
        idempotency_key=require_key(key),
        scope=scope_of(who),
    )
    return answered(response, answer)


@router.post(
    "/webhooks/{subscription_id}/pings",
    status_code=200,
    responses=COMMAND_RESPONSES,
    summary="Send a signed test message now and say how the endpoint answered",
)
def ping(
    rt: RuntimeDep,
    subscription_id: SubscriptionId,
    who: Owner,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    require_key(key)  # (a ping changes nothing: the key is asked for, like every POST's)
    return _hooks(rt).ping(subscription_id, _caller(who))
