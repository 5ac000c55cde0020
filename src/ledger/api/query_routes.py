"""The reads: goods, stock (and its live stream), units and their history,
lineage, royalty statements, settlement reports, velocity, view status; a
tier's redemption-code counts.

Answers come from the projections, which follow the store a few
milliseconds behind (``GET /views/status`` measures it); each answer says
which store position it reflects in ``X-Ledger-View-Position``. The code
counts come from the store itself, so they include an import just made.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import AfterValidator

from ledger.api.auth import check_channel, check_creator, require
from ledger.api.json_body import StrictJsonRoute
from ledger.api.log_routes import RuntimeDep
from ledger.api.problems import ApiProblem
from ledger.api.runtime import Runtime
from ledger.domain import limits
from ledger.projections.projector import Changes
from ledger.projections.queries import good_listing, settlement_csv
from ledger.projections.runner import ViewsBehindError
from ledger.store.apikeys import Principal, Role

router = APIRouter(tags=["reads"], route_class=StrictJsonRoute)

Reader = Annotated[Principal, require(Role.CREATOR, Role.CHANNEL, Role.AUDITOR)]
CreatorReader = Annotated[Principal, require(Role.CREATOR, Role.AUDITOR)]
ChannelReader = Annotated[Principal, require(Role.CHANNEL, Role.AUDITOR)]
Operator = Annotated[Principal, require(Role.AUDITOR, Role.VERIFIER)]

GoodId = Annotated[UUID, Path(description="The good's id")]
UnitId = Annotated[UUID, Path(description="The unit's id")]
Ident = Annotated[
    str, Path(min_length=1, max_length=limits.ID_CHARS_MAX, pattern=limits.IDENTIFIER_PATTERN)
]
Cursor = Annotated[
    str | None, Query(max_length=1_024, description="next_cursor of the previous page")
]
Limit = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]


def _calendar_day(value: str | None) -> str | None:
    """A day of the calendar (2026-13-01 is not one), checked here so that a
    422 names every bad day of a request at once."""
    if value is not None:
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise ValueError("not a day of the calendar, YYYY-MM-DD") from None
    return value


Day = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-\d\d-\d\d$", description="YYYY-MM-DD (UTC)"),
    AfterValidator(_calendar_day),
]
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an invalid or revoked one"},
    403: {"description": "The key's role or scope does not allow this"},
    404: {"description": "Not found"},
    422: {"description": "Malformed query"},
    503: {
        "description": "A lookup missed while the views were behind the store "
        "(views-behind): retry after Retry-After"
    },
}
KEEPALIVE_SECONDS = 15.0


def _positioned(rt: Runtime, response: Response) -> None:
    if rt.projections is not None and rt.runner is not None:
        response.headers["X-Ledger-View-Position"] = str(rt.runner.position)


CATCH_UP_SECONDS = 2.0


def _found(rt: Runtime, fetch: Callable[[], Any], what: str, code: str = "not-found") -> Any:
    """``fetch()`` from the views, found -- or a 404 only when the views it
    read held everything stored before this request, so what a client has
    just created is never reported missing. If the views are behind, wait
    (at most ``CATCH_UP_SECONDS``) for them; if they are still behind, a 503
    ``views-behind`` with ``Retry-After``: a miss then proves nothing."""
    if rt.runner is None or rt.projections is None:
        value = fetch()
    else:
        try:
            value = rt.runner.lookup(fetch, rt.projections.store_position, CATCH_UP_SECONDS)
        except ViewsBehindError as behind:
            raise ApiProblem(
                503,
                "views-behind",
                f"{what} is not in the views yet: they are at store position "
                f"{behind.position} of {behind.needed}; retry in a second",
                headers={"Retry-After": "1"},
            ) from None
    if value is None:
        raise ApiProblem(404, code, f"{what} does not exist")
    return value


def registered(rt: Runtime, channel: str) -> dict[str, Any]:
    """The channel as the views know it, or a 404 ``channel-not-found`` (never
    an empty answer about a channel that was never registered)."""
    found: dict[str, Any] = _found(
        rt, lambda: rt.views.channel(channel), f"channel {channel!r}", "channel-not-found"
    )
    return found


@router.get(
    "/goods", responses=READ_RESPONSES, summary="Goods, a page at a time (a creator sees their own)"
)
def goods(
    rt: RuntimeDep,
    who: Reader,
    response: Response,
    cursor: Cursor = None,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    creator: Annotated[str | None, Query(max_length=limits.ID_CHARS_MAX)] = None,
) -> dict[str, Any]:
    if who.role is Role.CREATOR:
        creator = who.subject
    _positioned(rt, response)
    return rt.views.goods(creator=creator, cursor=cursor, limit=limit).to_json()


@router.get("/goods/{good_id}", responses=READ_RESPONSES, summary="One good")
def good(rt: RuntimeDep, good_id: GoodId, _who: Reader, response: Response) -> dict[str, Any]:
    _positioned(rt, response)
    found: dict[str, Any] = _found(rt, lambda: rt.views.good(str(good_id)), f"good {good_id}")
    tiers = rt.views.stock(str(good_id))
    return found | good_listing(tiers) | {"stock": tiers}


@router.get(
    "/goods/{good_id}/stock",
    responses=READ_RESPONSES,
    summary="Stock per tier: quota, issued, reserved, available, display band",
)
def stock(rt: RuntimeDep, good_id: GoodId, _who: Reader, response: Response) -> dict[str, Any]:
    _positioned(rt, response)
    _found(rt, lambda: rt.views.good(str(good_id)), f"good {good_id}")
    return {"good_id": str(good_id), "tiers": rt.views.stock(str(good_id))}


@router.get(
    "/goods/{good_id}/stock/stream",
    responses=READ_RESPONSES,
    response_class=StreamingResponse,
    summary="Server-sent events: the good's stock now, then each time it changes",
)
async def stock_stream(
    rt: RuntimeDep, good_id: GoodId, _who: Reader, request: Request
) -> StreamingResponse:
    key = str(good_id)
    # Ask the store, not the views: a stream opened right after the mint
    # must not be refused while the views catch up (they push it when they do).
    await run_in_threadpool(rt.ledger.good, good_id)
    runner = rt.runner
    if runner is None:
        raise ApiProblem(503, "views-unavailable", "this server runs without live views")
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def on_change(changes: Changes) -> None:
        if key in changes.goods:
            loop.call_soon_threadsafe(changed.set)

    unsubscribe = runner.subscribe(on_change)

    async def events() -> AsyncIterator[bytes]:
        try:
            while True:
                changed.clear()
                position = runner.position
                tiers = await run_in_threadpool(rt.views.stock, key)
                data = orjson.dumps({"good_id": key, "tiers": tiers}).decode()
                yield f"id: {position}\nevent: stock\ndata: {data}\n\n".encode()
                while not changed.is_set():
                    try:
                        await asyncio.wait_for(changed.wait(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield b": keep-alive\n\n"
        finally:
            unsubscribe()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/goods/{good_id}/lineage",
    responses=READ_RESPONSES,
    summary="The master-variant graph around a good",
)
def lineage(rt: RuntimeDep, good_id: GoodId, _who: Reader, response: Response) -> dict[str, Any]:
    _positioned(rt, response)
    found: dict[str, Any] = _found(rt, lambda: rt.views.lineage(str(good_id)), f"good {good_id}")
    return found


@router.get(
    "/goods/{good_id}/velocity",
    responses=READ_RESPONSES,
    summary="Units sold per hour over a window, and a sell-out estimate per tier",
)
def velocity(
    rt: RuntimeDep,
    good_id: GoodId,
    _who: Reader,
    response: Response,
    window_minutes: Annotated[
        int | None, Query(ge=1, le=limits.VELOCITY_WINDOW_MINUTES_MAX)
    ] = None,
) -> dict[str, Any]:
    _positioned(rt, response)
    _found(rt, lambda: rt.views.good(str(good_id)), f"good {good_id}")
    window = window_minutes or rt.velocity_window_minutes
    return {
        "good_id": str(good_id),
        "tiers": rt.views.velocity(str(good_id), now=datetime.now(UTC), window_minutes=window),
    }


@router.get(
    "/goods/{good_id}/units",
    responses=READ_RESPONSES,
    summary="A good's units, by tier and serial, a page at a time",
)
def units(
    rt: RuntimeDep,
    good_id: GoodId,
    _who: Reader,
    response: Response,
    tier: Annotated[str | None, Query(pattern=limits.TIER_NAME_PATTERN, max_length=32)] = None,
    holder: Annotated[str | None, Query(max_length=limits.ID_CHARS_MAX)] = None,
    cursor: Cursor = None,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    _positioned(rt, response)
    return rt.views.units(
        str(good_id), tier=tier, holder=holder, cursor=cursor, limit=limit
    ).to_json()


@router.get(
    "/units/{unit_id}",
    responses=READ_RESPONSES,
    summary="A unit and every event of its life, holder by holder, with prices, "
    "channels and event hashes",
)
def unit(rt: RuntimeDep, unit_id: UnitId, _who: Reader, response: Response) -> dict[str, Any]:
    _positioned(rt, response)
    found: dict[str, Any] = _found(rt, lambda: rt.views.unit(str(unit_id)), f"unit {unit_id}")
    return found


@router.get(
    "/goods/{good_id}/holds",
    responses=READ_RESPONSES,
    summary="A good's holds, a page at a time (a channel sees its own)",
)
def holds(
    rt: RuntimeDep,
    good_id: GoodId,
    who: Reader,
    response: Response,
    state: Annotated[Literal["held", "committed", "released", "expired"] | None, Query()] = None,
    channel: Annotated[str | None, Query(max_length=limits.ID_CHARS_MAX)] = None,
    cursor: Cursor = None,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    if who.role is Role.CHANNEL:
        channel = who.subject
    _positioned(rt, response)
    return rt.views.holds(
        str(good_id), channel=channel, state=state, cursor=cursor, limit=limit
    ).to_json()


@router.get(
    "/goods/{good_id}/pools",
    responses=READ_RESPONSES,
    summary="Channels' pools of a good: unsold units set aside per tier and channel "
    "(a channel sees its own)",
)
def pools(rt: RuntimeDep, good_id: GoodId, who: Reader, response: Response) -> dict[str, Any]:
    _positioned(rt, response)
    _found(rt, lambda: rt.views.good(str(good_id)), f"good {good_id}")
    channel = who.subject if who.role is Role.CHANNEL else None
    return {"good_id": str(good_id), "pools": rt.views.pools(str(good_id), channel=channel)}


@router.get(
    "/goods/{good_id}/waitlist",
    responses=READ_RESPONSES,
    summary="Buyers waiting for a restock, with their place in line (a channel sees its own)",
)
def waitlist(rt: RuntimeDep, good_id: GoodId, who: Reader, response: Response) -> dict[str, Any]:
    _positioned(rt, response)
    _found(rt, lambda: rt.views.good(str(good_id)), f"good {good_id}")
    channel = who.subject if who.role is Role.CHANNEL else None
    return {"good_id": str(good_id), "waiting": rt.views.waitlist(str(good_id), channel=channel)}


@router.get(
    "/goods/{good_id}/tiers/{tier}/codes",
    responses=READ_RESPONSES,
    summary="A tier's redemption codes, counted (never shown): imported, available, "
    "lent to holds, bound to units",
)
def code_counts(
    rt: RuntimeDep,
    good_id: GoodId,
    tier: Annotated[str, Path(pattern=limits.TIER_NAME_PATTERN, max_length=32)],
    who: CreatorReader,
) -> dict[str, Any]:
    # From the store, not the views: counts an import has just changed.
    check_creator(who, [c.id for c in rt.ledger.good(good_id).spec.creators])
    return rt.ledger.code_counts(good_id, tier)


@router.get(
    "/holds/{hold_id}",
    responses=READ_RESPONSES,
    summary="One hold: how much, until when, and how it ended",
)
def hold(
    rt: RuntimeDep, hold_id: Annotated[UUID, Path()], who: Reader, response: Response
) -> dict[str, Any]:
    _positioned(rt, response)
    found: dict[str, Any] = _found(rt, lambda: rt.views.hold(str(hold_id)), f"hold {hold_id}")
    if who.role is Role.CHANNEL:
        check_channel(who, found["channel"])
    return found


@router.get(
    "/creators/{creator}/statement",
    responses=READ_RESPONSES,
    summary="A creator's royalty statement: each payment, and totals per good "
    "and kind, for a period",
)
def statement(
    rt: RuntimeDep,
    creator: Ident,
    who: CreatorReader,
    response: Response,
    good_id: Annotated[UUID | None, Query()] = None,
    from_: Annotated[Day, Query(alias="from")] = None,
    to: Day = None,
    kind: Annotated[
        list[Literal["primary", "resale", "primary-refund", "resale-refund"]] | None, Query()
    ] = None,
    cursor: Cursor = None,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    check_creator(who, [creator])
    _positioned(rt, response)
    return rt.views.statement(
        creator,
        good_id=str(good_id) if good_id else None,
        from_day=from_,
        to_day=to,
        kinds=tuple(kind) if kind else None,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/channels/{channel}/settlement",
    responses=READ_RESPONSES
    | {
        200: {
            "content": {"application/json": {}, "text/csv": {}},
            "description": "Per day and currency: units, gross, fees, royalties, seller "
            "proceeds, net (= gross - fees)",
        }
    },
    summary="A channel's settlement report per day (JSON, or CSV with format=csv)",
)
def settlement(
    rt: RuntimeDep,
    channel: Ident,
    who: ChannelReader,
    response: Response,
    from_: Annotated[Day, Query(alias="from")] = None,
    to: Day = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    check_channel(who, channel)
    registered(rt, channel)
    _positioned(rt, response)
    rows = rt.views.settlement(channel, from_day=from_, to_day=to)
    if format == "csv":
        return PlainTextResponse(
            settlement_csv(rows),
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="settlement-{channel}.csv"',
                **{k: v for k, v in response.headers.items() if k == "x-ledger-view-position"},
            },
        )
    return {"channel": channel, "from": from_, "to": to, "days": rows}


@router.get(
    "/views/status",
    responses=READ_RESPONSES,
    summary="How far the views have read the store, and the measured lag",
)
def views_status(rt: RuntimeDep, _who: Operator) -> dict[str, Any]:
    if rt.runner is None:
        raise ApiProblem(503, "views-unavailable", "this server runs without live views")
    return rt.runner.status()
