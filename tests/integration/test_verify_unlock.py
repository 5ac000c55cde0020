"""The auditor and unlock tiers (docs/format.md rule 8.16): a careful forger
deletes or edits a ``stock.unlocked`` and re-chains the stock (so every hash
checks out); a sale or hold before its tier's unlocking, an unlocking before
its time or before the other tier sold its units, is still caught -- a
domain-rule finding (exit 4) located at the forged event or after it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from ledger.verify.classes import exit_code
from tests.integration.test_verify_ledger import Store, encode
from tests.strategies import good_spec

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EUR = Money(100, "EUR")
AT = "2026-12-01T13:00:00.000000Z"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("unlock") / "ledger.db"
    now = [T0]
    with Ledger(DatabaseURL.parse(f"sqlite:///{path}"), clock=lambda: now[0]) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        tiers = [
            {"name": "early", "quota": 3},
            {"name": "late", "quota": 5, "unlock": {"tier": "early", "sold": 2}},
            {"name": "night", "quota": 5, "unlock": {"at": AT}},
        ]
        good = ledger.mint(good_spec(tiers=tiers), idempotency_key="m")["good_id"]

        def sell(tier: str, key: str) -> None:
            ledger.sell(
                good, tier, buyer="ann", channel="shop", quantity=1, unit_price=EUR,
                idempotency_key=key,
            )  # fmt: skip

        sell("early", "e1")
        sell("early", "e2")
        sell("late", "l1")  # opens "late"
        now[0] = T0 + timedelta(hours=1)
        ledger.reserve(
            good, "night", channel="shop", quantity=1, ttl_seconds=60, idempotency_key="h"
        )
        sell("night", "n1")
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "ledger.db"
    shutil.copy(template, copy)
    return Store(copy)


def test_the_honest_store_verifies_with_both_kinds_of_unlock(store: Store) -> None:
    report = verify_store(store.url)
    assert report.ok, report.first
    assert report.by_type["stock.unlocked"] == 2


def _delete(store: Store, nth: int) -> int:
    row = store.find("stock.unlocked", nth)
    store.delete(row.rowid)
    store.rechain(row.aggregate_id)
    return row.rowid


def _edit(store: Store, nth: int, change: Callable[[dict[str, Any]], None]) -> int:
    """Edit the whole record (payload and envelope) of an unlocking."""
    row = store.find("stock.unlocked", nth)
    data = row.data
    change(data)
    store.write_state(row.rowid, encode(data))
    store.rechain(row.aggregate_id)
    return row.rowid


def _drop_an_early_sale(data: dict[str, Any]) -> None:
    data["payload"]["sold"] = 1  # (as if one sale of "early" had not been made)


Forgery = Callable[[Store], int]
CASES: list[tuple[str, Forgery, str, str]] = [
    # (case, forgery, check, the event type of the first finding)
    ("a sale before its tier opened", lambda s: _delete(s, 0), "locked", "stock.sold"),
    ("a hold before its tier opened", lambda s: _delete(s, 1), "locked", "stock.reserved"),
    (
        "an unlocking before its time",
        lambda s: _edit(s, 1, lambda d: d.update(timestamp="2026-12-01T12:30:00.000000Z")),
        "unlock",
        "stock.unlocked",
    ),
    (
        "an unlocking that misstates the other tier's sales",
        lambda s: _edit(s, 0, _drop_an_early_sale),
        "unlock",
        "stock.unlocked",
    ),
    (
        "an unlocking that misstates its cause",
        lambda s: _edit(s, 1, lambda d: d["payload"].update(cause="sales", sold=3)),
        "unlock",
        "stock.unlocked",
    ),
]


@pytest.mark.parametrize(("case", "forgery", "check", "where"), CASES, ids=[c[0] for c in CASES])
def test_each_forged_unlocking_is_caught(
    store: Store, case: str, forgery: Forgery, check: str, where: str
) -> None:
    rowid = forgery(store)
    report = verify_store(store.url)
    found = [f for f in report.findings if f.check == check]
    assert found, f"{case}: {[str(f) for f in report.findings]}"
    assert exit_code(f.check for f in report.findings) == 4  # a domain rule, not the chain
    assert found[0].position is not None
    assert found[0].position >= rowid
    assert found[0].event_type == where, str(found[0])
