"""``ledger views``: status and rebuild."""

from __future__ import annotations

from ledger.cli.common import (
    DbOption,
    _fail,
    _progress,
    _store_url,
    console,
)
from ledger.config import Settings
from ledger.store.records import StoreMissingError


def views_status(db: DbOption = None) -> None:
    """How far the views have read the store."""
    from ledger.projections import ProjectionStore
    from ledger.store.records import RecordReader

    try:
        with RecordReader(_store_url(db)) as reader:
            views = ProjectionStore(reader.recorder, create=False)
            if not views.exists():
                raise _fail(
                    "this store has no views yet (ledger serve or ledger views rebuild makes them)"
                )
            at, head = views.position(), views.store_position()
    except StoreMissingError as error:
        raise _fail(str(error)) from None
    console.print(
        f"views at position {at.position:,} of {head:,} ({head - at.position:,} "
        f"behind); {at.events:,} events applied; last event {at.last_event_at}, "
        f"applied {at.applied_at}",
        highlight=False,
    )


def views_rebuild(db: DbOption = None) -> None:
    """Drop the views and rebuild them from the first event (a running
    server's views follow on from wherever the rebuild has got to)."""
    from ledger.projections import ProjectionStore
    from ledger.store.records import RecordReader

    try:
        with RecordReader(_store_url(db)) as reader:
            views = ProjectionStore(reader.recorder, bands=Settings().band_policy())
            views.reset()
            head = views.store_position()
            applied = 0
            with _progress() as progress:
                task = progress.add_task("rebuilding views", total=head)
                while (changes := views.apply_next(_timestamp_now)) is not None:
                    applied += changes.events
                    progress.update(task, completed=changes.position)
            position = views.position().position
    except StoreMissingError as error:
        raise _fail(str(error)) from None
    except ValueError as error:  # a band setting out of order
        raise _fail(str(error)) from None
    console.print(f"views rebuilt: {applied:,} events applied, position {position:,}")


def _timestamp_now() -> str:
    from datetime import UTC, datetime

    from ledger.domain.model import format_timestamp

    return format_timestamp(datetime.now(UTC))
