"""``GET /audit``: the audit trail, from the views.

Who recorded which event (an API key with the request it came in, the
server on its own, an operator at the command line), what good and unit it
touched, and its entry in the global log, a keyset page at a time, oldest
first. Auditors and admins only: the trail names every key and request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator

from ledger.api.auth import require
from ledger.api.json_body import StrictJsonRoute
from ledger.api.log_routes import RuntimeDep
from ledger.api.query_routes import READ_RESPONSES, Cursor, Limit, _positioned
from ledger.domain import limits
from ledger.domain.actor import KEY_ID, REQUEST_ID, SUBJECT
from ledger.domain.errors import InvalidInputError
from ledger.projections.audit import AuditFilter, audit_page, link, moment
from ledger.store.apikeys import Principal, Role

router = APIRouter(tags=["reads"], route_class=StrictJsonRoute)

Auditor = Annotated[Principal, require(Role.AUDITOR)]


def _moment(value: str | None) -> str | None:
    """A day or a date-time with an offset, checked here so that a 422 names
    every bad bound of a request at once."""
    if value is not None:
        try:
            moment(value, "time")
        except InvalidInputError as error:
            raise ValueError(error.message.removeprefix("time: ")) from None
    return value


Moment = Annotated[
    str | None,
    Query(
        max_length=40,
        description="YYYY-MM-DD (midnight UTC) or an ISO 8601 date-time with an offset",
    ),
    AfterValidator(_moment),
]


@router.get(
    "/audit",
    responses=READ_RESPONSES,
    summary="The audit trail: who recorded each event, what it touched, its log entry",
)
def audit(
    rt: RuntimeDep,
    _who: Auditor,
    response: Response,
    actor: Annotated[
        str | None,
        Query(
            max_length=limits.ID_CHARS_MAX,
            pattern=f"^{SUBJECT.pattern}$",
            description="recorded_by.subject: a channel, creator, the server's name, cli",
        ),
    ] = None,
    key_id: Annotated[str | None, Query(pattern=f"^{KEY_ID.pattern}$")] = None,
    role: Literal["admin", "creator", "channel", "auditor", "server", "operator"] | None = None,
    request_id: Annotated[
        str | None, Query(max_length=128, pattern=f"^{REQUEST_ID.pattern}$")
    ] = None,
    good: Annotated[UUID | None, Query(description="events concerning this good")] = None,
    unit: Annotated[UUID | None, Query(description="events of, or naming, this unit")] = None,
    from_: Annotated[Moment, Query(alias="from", description="from this moment (included)")] = None,
    to: Annotated[Moment, Query(description="up to this moment (excluded)")] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=limits.JSON_INTEGER_MAX,
            description="lines at store positions after this one (the newest: "
            "GET /views/status position less a few)",
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    _positioned(rt, response)
    f = AuditFilter(
        actor=actor,
        key_id=key_id,
        role=role,
        request_id=request_id,
        good_id=None if good is None else str(good),
        unit_id=None if unit is None else str(unit),
        since=None if from_ is None else moment(from_, "from"),
        until=None if to is None else moment(to, "to"),
        after=after,
    )
    return link(audit_page(rt.views, f, cursor=cursor, limit=limit), rt.log).to_json()
