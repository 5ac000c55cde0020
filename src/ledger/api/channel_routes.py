"""The channels: which are registered, and the fee each sells at.

A channel is registered by an admin (``POST /channels``, with the commands)
before its first sale; its fee is fixed from then on, so the fee shown is
the one in force for every sale through it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from ledger.api.json_body import StrictJsonRoute
from ledger.api.log_routes import RuntimeDep
from ledger.api.query_routes import (
    READ_RESPONSES,
    Cursor,
    Limit,
    Reader,
    _positioned,
    registered,
)
from ledger.domain import limits

router = APIRouter(tags=["reads"], route_class=StrictJsonRoute)

ChannelId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=limits.ID_CHARS_MAX,
        pattern=limits.IDENTIFIER_PATTERN,
        description="The channel's id",
    ),
]


@router.get(
    "/channels",
    responses=READ_RESPONSES,
    summary="The registered channels, a page at a time, each with its fee",
)
def channels(
    rt: RuntimeDep,
    _who: Reader,
    response: Response,
    cursor: Cursor = None,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    _positioned(rt, response)
    return rt.views.channels(cursor=cursor, limit=limit).to_json()


@router.get(
    "/channels/{channel}",
    responses=READ_RESPONSES,
    summary="One channel: its name and the fee in force (fixed at registration)",
)
def channel(rt: RuntimeDep, channel: ChannelId, _who: Reader, response: Response) -> dict[str, Any]:
    found = registered(rt, channel)
    _positioned(rt, response)  # (after the lookup, which may have waited for the views)
    return found
