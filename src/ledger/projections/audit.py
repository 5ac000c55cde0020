"""Reading the audit trail: who recorded which event, what it touched, and
where it is in the global log.

``proj_audit`` holds one row per event (built by
:mod:`ledger.projections.audit_rows`), in store-position order. A line
answers "what did this key do" (filter ``key_id``), "who touched this
unit" (``unit``), and so on, a keyset page at a time. Each line links to
its log entry: the leaf hash is known as soon as the event is (RFC 9162,
SHA-256(0x00 || record bytes)); the leaf *index* only once the log's
sealer has sequenced the event (a second or so after its commit), and a
proof of inclusion only once a checkpoint covering that index is signed.
So a line says ``index`` (null until sequenced) and ``signed``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ledger.domain.actor import KEY_ID, REQUEST_ID, ROLES, SUBJECT
from ledger.domain.errors import InvalidInputError
from ledger.domain.model import format_timestamp
from ledger.projections.queries import Page, Views, _equal
from ledger.store.logstore import LogStore


@dataclass(frozen=True)
class AuditFilter:
    """What a line must match (None: anything). ``since``/``until`` are
    canonical timestamps, a half-open range [since, until)."""

    actor: str | None = None  # recorded_by.subject
    key_id: str | None = None
    role: str | None = None
    request_id: str | None = None
    good_id: str | None = None
    unit_id: str | None = None
    since: str | None = None
    until: str | None = None
    after: int | None = None  # only lines at store positions after this one


def moment(text: str, field: str) -> str:
    """A day (``YYYY-MM-DD``: its midnight, UTC) or an ISO 8601 date-time
    with a UTC offset, as the canonical timestamp events carry."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            value = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            field, "must be a day (YYYY-MM-DD) or a date-time with an offset"
        ) from None
    if value.tzinfo is None:
        raise InvalidInputError(field, "a date-time needs an offset (Z or +hh:mm)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(field, "is out of range in UTC") from None
    if utc.year < 1000:  # (the timestamps events carry have four-digit years)
        raise InvalidInputError(field, "must be in the years 1000 to 9999")
    return format_timestamp(utc)


def checked_filter(
    *,
    actor: str | None = None,
    key_id: str | None = None,
    role: str | None = None,
    request_id: str | None = None,
    good: str | None = None,
    unit: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> AuditFilter:
    """The filter these raw values name, each checked as ``GET /audit``
    checks it (:class:`InvalidInputError` naming the first bad one)."""
    for field, value, pattern in (
        ("actor", actor, SUBJECT),
        ("key_id", key_id, KEY_ID),
        ("request_id", request_id, REQUEST_ID),
    ):
        if value is not None and not pattern.fullmatch(value):
            raise InvalidInputError(field, f"does not match {pattern.pattern}")
    if role is not None and role not in ROLES:
        raise InvalidInputError("role", f"must be one of {', '.join(sorted(ROLES))}")
    ids = {}
    for field, value in (("good", good), ("unit", unit)):
        try:
            ids[field] = None if value is None else str(uuid.UUID(value))
        except ValueError:
            raise InvalidInputError(field, "must be a UUID") from None
    start = None if since is None else moment(since, "from")
    end = None if until is None else moment(until, "to")
    if start is not None and end is not None and start >= end:
        raise InvalidInputError("to", "must be after from")
    return AuditFilter(
        actor=actor,
        key_id=key_id,
        role=role,
        request_id=request_id,
        good_id=ids["good"],
        unit_id=ids["unit"],
        since=start,
        until=end,
    )


def audit_page(views: Views, f: AuditFilter, *, cursor: str | None, limit: int) -> Page:
    """A page of the trail, oldest first."""
    where, params = _equal(
        subject=f.actor,
        key_id=f.key_id,
        role=f.role,
        request_id=f.request_id,
        good_id=f.good_id,
        unit_id=f.unit_id,
    )
    if f.since is not None and f.until is not None and f.since >= f.until:
        raise InvalidInputError("to", "must be after from")
    if f.since is not None:
        where.append("at >= ?")
        params.append(f.since)
    if f.until is not None:
        where.append("at < ?")
        params.append(f.until)
    if f.after is not None:
        where.append("position > ?")
        params.append(f.after)
    return views._page("SELECT * FROM {audit}", where, params, ["position"], cursor, limit, _line)


def _line(r: dict[str, Any]) -> dict[str, Any]:
    actor = None
    if r["role"] is not None:
        actor = {"request_id": r["request_id"], "role": r["role"], "subject": r["subject"]}
        if r["key_id"] is not None:
            actor["key_id"] = r["key_id"]
    return {
        "position": int(r["position"]),
        "aggregate_id": r["aggregate_id"],
        "version": int(r["version"]),
        "type": r["type"],
        "timestamp": r["at"],
        "recorded_by": actor,
        "good_id": r["good_id"],
        "unit_id": r["unit_id"],
        "log": {"leaf_hash": r["leaf_hash"], "index": None, "signed": False},
    }


def link(page: Page, log: LogStore | None) -> Page:
    """Fill in each line's leaf index (once sequenced) and whether a signed
    checkpoint covers it (then ``GET /log/proof/inclusion?index=…`` proves it)."""
    if log is None or not page.items:
        return page
    indexes = log.indexes_of([line["position"] for line in page.items])
    latest = log.latest_checkpoint()
    signed = 0 if latest is None else latest.size
    for line in page.items:
        index = indexes.get(line["position"])
        line["log"]["index"] = index
        line["log"]["signed"] = index is not None and index < signed
    return page
