"""``ledger export``: the event records as JSON Lines, or an audit bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import (
    DbOption,
    _event_count,
    _fail,
    _load_policy,
    _progress,
    _store_url,
    console,
)
from ledger.store.records import StoreMissingError


def export(
    out: Annotated[
        Path, typer.Option("--out", help="File (JSON Lines) or, with --bundle, directory to write.")
    ],
    db: DbOption = None,
    bundle: Annotated[
        bool,
        typer.Option(
            "--bundle",
            help="Write a self-contained audit "
            "bundle: entries, checkpoints with cosignatures, "
            "policy.",
        ),
    ] = False,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy file to include in the bundle.")
    ] = None,
) -> None:
    """Write every event record, in commit order, to a JSON Lines file (or an
    audit bundle directory with --bundle)."""
    from ledger.verify import export_bundle, export_store

    url = _store_url(db)
    policy_text = None
    if policy is not None:
        _load_policy(policy)  # refuse a bad one before writing anything
        policy_text = policy.read_text()
    with _progress() as progress:
        phase = "exporting the audit bundle's events" if bundle else "exporting events"
        task = progress.add_task(phase, total=_event_count(url))

        def advance(done: int) -> None:
            progress.update(task, completed=done)

        try:
            if bundle:
                count = export_bundle(url, out, policy_text, advance)
            else:
                count = export_store(url, out, advance)
        except StoreMissingError as error:
            raise _fail(str(error)) from None
        except OSError as error:
            raise _fail(f"cannot write {out}: {error.strerror}") from None
    console.print(f"wrote {count:,} events to {out}")
