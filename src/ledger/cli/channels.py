"""``ledger channels``: register a channel, list the registered ones.

A sale, hold, waitlist entry or pool names a channel, which must be
registered first (otherwise a 404 ``channel-not-found``): ``ledger channels
add`` here, or ``POST /channels`` with an admin key. The fee is fixed at
registration.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.cli.common import DbOption, _fail, _first_line, _store_url, _url, console

if TYPE_CHECKING:
    from ledger.service import Ledger

CHANNEL_TOPIC = "channel.registered"
PAGE = 1_000


def channels_add(
    channel: Annotated[str, typer.Argument(help="The channel's id, e.g. shop.")],
    fee_bps: Annotated[
        int,
        typer.Option(
            "--fee-bps",
            help="The channel's fee on each sale, in basis points (500 = 5 %).",
            min=0,
            max=10_000,
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="A display name (default: the id).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Register a channel (a shop, a livestream room, a partner site) so that it
    can sell. Its fee is fixed from now on."""
    from ledger.domain.errors import LedgerError

    key = f"cli-channel-{uuid.uuid4().hex}"

    def register(ledger: Ledger) -> dict[str, Any]:
        try:
            return ledger.register_channel(
                channel, name or channel, fee_bps, idempotency_key=key, scope="cli"
            )
        except LedgerError as error:
            raise _fail(f"{error.message} [{error.code}]") from None

    done = _with_ledger(db, register, create=True)
    console.print(
        f"registered channel {done['channel']} ({name or channel}), fee "
        f"{done['fee_bps']} bps ({done['fee_bps'] / 100:g} %)",
        highlight=False,
    )


def channels_list(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Every registered channel, by id: name, fee and when it was registered
    (read from the events, so no server need have run)."""
    from rich.table import Table

    rows = sorted(_with_ledger(db, _registered), key=lambda row: str(row["channel"]))
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("channel", "name", "fee (bps)", "registered")
    for row in rows:
        table.add_row(row["channel"], row["name"], str(row["fee_bps"]), row["registered_at"])
    console.print(table)


def _registered(ledger: Ledger) -> list[dict[str, Any]]:
    """The ``channel.registered`` events of the store, a page at a time."""
    recorder = ledger.event_store.recorder
    rows: list[dict[str, Any]] = []
    start = 1
    while True:
        page = recorder.select_notifications(start=start, limit=PAGE, topics=(CHANNEL_TOPIC,))
        for item in page:
            event = json.loads(item.state)
            payload = event["payload"]
            rows.append(
                {
                    "channel": payload["channel"],
                    "name": payload["name"],
                    "fee_bps": payload["fee_bps"],
                    "registered_at": event["timestamp"],
                }
            )
        if len(page) < PAGE:
            return rows
        start = page[-1].id + 1


def _with_ledger(db: str | None, work: Any, *, create: bool = False) -> Any:
    """Run ``work`` on the ledger at ``db``; any store failure is one line."""
    from ledger.domain.actor import Actor, acting
    from ledger.service import Ledger

    url = _url(db) if create else _store_url(db)
    try:
        with Ledger(url) as ledger, acting(Actor.operator()):
            return work(ledger)
    except typer.Exit:
        raise
    except Exception as error:  # no server, a file we cannot write...
        raise _fail(f"cannot open the ledger at {url.display()}: {_first_line(error)}") from None
