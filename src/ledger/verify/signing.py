"""Whether the log was signed in time (``unsigned-events``): an event outside
every checkpoint that verified, much older than the newest event."""

from __future__ import annotations

from datetime import datetime

from ledger.verify.facts import Event
from ledger.verify.report import Finding

NO_TIME = "~"  # after every timestamp's text


def _instant(stamp: str) -> datetime:
    """A timestamp already checked to be ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.fromisoformat(stamp[:-1])


def unsigned_finding(ev: Event | None, stamp: str, newest: str, max_age: float) -> Finding | None:
    """``unsigned-events`` if ``ev`` (the oldest event fed since the log was
    last known signed, at ``stamp``) is more than ``max_age`` seconds older
    than the ``newest`` timestamp fed."""
    if ev is None or not newest:
        return None
    age = (_instant(newest) - _instant(stamp)).total_seconds()
    if age <= max_age:
        return None
    return Finding(
        ev.position,
        ev.aggregate_id,
        ev.version,
        ev.type,
        "unsigned-events",
        f"this event ({stamp}) is outside every checkpoint, {age:g} s older "
        f"than the newest event ({newest}): the log was not signed "
        "for longer than the sealer ever leaves it, or its later checkpoints "
        "were removed",
        expected=f"<= {max_age:g} s",
        actual=f"{age:g} s",
    )
