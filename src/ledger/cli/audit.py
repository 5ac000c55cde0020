"""``ledger audit``: the audit trail of a store, read from its views.

Like ``ledger views status``, it reads the views in the store's database
(``--db``), which a running server keeps current and ``ledger views
rebuild`` rebuilds: an auditor with read access to the database needs no
API key and no server, and the answer is the one ``GET /audit`` gives. If
the views are behind the store it says so on stderr (the lines are those of
the events the views have applied).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from ledger.cli.common import DbOption, _fail, _store_url

PAGE = 1_000


def audit(
    db: DbOption = None,
    key_id: Annotated[
        str | None, typer.Option("--key-id", help="What this API key did (12 hex digits).")
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="recorded_by.subject: a channel, a creator, cli, the server."),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option("--role", help="admin, creator, channel, auditor, server or operator."),
    ] = None,
    request_id: Annotated[
        str | None, typer.Option("--request-id", help="The events of one request.")
    ] = None,
    good: Annotated[str | None, typer.Option("--good", help="Events concerning a good.")] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="Who touched this unit: its events.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="From this day or date-time with offset (included)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Up to this day or date-time (excluded).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many lines.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object a line, as GET /audit gives.")
    ] = False,
) -> None:
    """The audit trail: who recorded each event (API key and request, the
    server, an operator), what good and unit it touched, and its log leaf
    (hash; index once sequenced; proved by GET /log/proof/inclusion once
    signed). Oldest first."""
    from ledger.domain.errors import InvalidInputError
    from ledger.projections.audit import checked_filter

    try:
        wanted = checked_filter(
            actor=actor,
            key_id=key_id,
            role=role,
            request_id=request_id,
            good=good,
            unit=unit,
            since=since,
            until=until,
        )
    except InvalidInputError as error:
        option = "--" + error.field.replace("_", "-")
        raise _fail(f"{option}: {error.message.removeprefix(error.field + ': ')}") from None
    for line in _lines(db, wanted, limit):
        sys.stdout.write((json.dumps(line) if as_json else _text(line)) + "\n")


def _lines(db: str | None, wanted: Any, limit: int | None) -> list[dict[str, Any]]:
    from ledger.projections import ProjectionStore
    from ledger.projections.audit import audit_page, link
    from ledger.projections.queries import Views
    from ledger.projections.tables import VIEWS_VERSION
    from ledger.store.logstore import LogStore
    from ledger.store.records import RecordReader, StoreMissingError

    lines: list[dict[str, Any]] = []
    try:
        with RecordReader(_store_url(db)) as reader:
            views = ProjectionStore(reader.recorder, create=False)
            if not views.exists() or views.version() != VIEWS_VERSION:
                raise _fail(
                    "this store has no audit view yet (ledger serve or ledger views rebuild "
                    "makes it)"
                )
            at, head = views.position().position, views.store_position()
            if at < head:
                sys.stderr.write(
                    f"note: the views are at position {at} of {head}; the lines cover the "
                    "events up to there\n"
                )
            log = LogStore(reader.recorder, create=False)
            log_or_none = log if log.exists() else None
            cursor = None
            while limit is None or len(lines) < limit:
                page = min(PAGE, PAGE if limit is None else limit - len(lines))
                found = audit_page(Views(views), wanted, cursor=cursor, limit=page)
                lines.extend(link(found, log_or_none).items)
                cursor = found.next_cursor
                if cursor is None:
                    break
    except StoreMissingError as error:
        raise _fail(str(error)) from None
    return lines


def _text(line: dict[str, Any]) -> str:
    who = line["recorded_by"]
    actor = "-" if who is None else f"{who['role']}:{who['subject'] or '-'}"
    if who is not None and "key_id" in who:
        actor += f" key {who['key_id']}"
    request = "-" if who is None else who["request_id"]
    leaf = line["log"]
    index = "unsequenced" if leaf["index"] is None else f"leaf {leaf['index']}"
    if leaf["index"] is not None and not leaf["signed"]:
        index += " (unsigned)"
    touched = f" unit {line['unit_id']}" if line["unit_id"] else ""
    return (
        f"{line['position']}  {line['timestamp']}  {line['type']}  "
        f"{line['aggregate_id']} v{line['version']}  {actor}  request {request}{touched}  "
        f"{index} {leaf['leaf_hash']}"
    )
