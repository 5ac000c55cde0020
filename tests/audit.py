"""The auditor's two checks, for tests that end a scenario with them."""

from __future__ import annotations

from ledger.projections import ProjectionStore, Views
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.verify import verify_store

APPLIED_AT = "2026-11-22T12:00:00.000000Z"


def audit(ledger: Ledger) -> Views:
    """Verify the store, bring its views up to date, check they equal a
    fresh replay; return them for reading."""
    report = verify_store(ledger.url)
    assert report.ok, report.first
    views = ProjectionStore(ledger.event_store.recorder)
    while views.apply_next(lambda: APPLIED_AT) is not None:
        pass
    replay = compare_with_replay(views)
    assert replay.ok, replay.differences
    return Views(views)
