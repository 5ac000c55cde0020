"""Pause, resume and delist a good or one of its tiers (the good's creator,
or an admin), each with a reason (see docs/commerce.md "Pausing and
delisting"; the rules are the tier stock's, :mod:`ledger.domain.listing`)."""

from __future__ import annotations

from uuid import UUID

from fastapi import Response

from ledger.api import models
from ledger.api.auth import check_creator
from ledger.api.command_edge import (
    ANSWER,
    COMMAND_RESPONSES,
    CreatorOrAdmin,
    GoodId,
    IdempotencyKey,
    TierPath,
    answered,
    creators_of,
    require_key,
    router,
    scope_of,
)
from ledger.api.log_routes import RuntimeDep
from ledger.api.runtime import Runtime
from ledger.store.apikeys import Principal

_SUMMARIES = {
    "pause": "Pause sales, holds and restocks of {what} until resumed, with a reason",
    "resume": "Resume {what} after its pause, with a reason",
    "delist": "Delist {what} for good, with a reason: no sale ever again "
    "(units sold stay valid and may be resold)",
}


def _change(
    rt: Runtime,
    action: str,
    good_id: UUID,
    tier: str | None,
    body: models.Reason,
    who: Principal,
    response: Response,
    key: str | None,
) -> Response:
    check_creator(who, creators_of(rt, good_id))
    change = {"pause": rt.ledger.pause, "resume": rt.ledger.resume, "delist": rt.ledger.delist}
    return answered(
        response,
        change[action](
            good_id,
            tier,
            reason=body.reason,
            idempotency_key=require_key(key),
            scope=scope_of(who),
        ),
    )


def _routes(action: str) -> None:
    """``POST /goods/{good_id}/<action>`` and ``…/tiers/{tier}/<action>``."""

    @router.post(
        f"/goods/{{good_id}}/{action}",
        status_code=201,
        response_model=ANSWER,
        responses=COMMAND_RESPONSES,
        summary=_SUMMARIES[action].format(what="every tier of a good"),
        operation_id=f"{action}_good",
    )
    def good_change(
        rt: RuntimeDep,
        good_id: GoodId,
        body: models.Reason,
        who: CreatorOrAdmin,
        response: Response,
        key: IdempotencyKey = None,
    ) -> Response:
        return _change(rt, action, good_id, None, body, who, response, key)

    @router.post(
        f"/goods/{{good_id}}/tiers/{{tier}}/{action}",
        status_code=201,
        response_model=ANSWER,
        responses=COMMAND_RESPONSES,
        summary=_SUMMARIES[action].format(what="a tier"),
        operation_id=f"{action}_tier",
    )
    def tier_change(
        rt: RuntimeDep,
        good_id: GoodId,
        tier: TierPath,
        body: models.Reason,
        who: CreatorOrAdmin,
        response: Response,
        key: IdempotencyKey = None,
    ) -> Response:
        return _change(rt, action, good_id, tier, body, who, response, key)


for _action in ("pause", "resume", "delist"):
    _routes(_action)
