"""The auditor and price rules by sell-through (docs/format.md rule 8.17): a
careful forger edits a ``stock.price-set`` and re-chains the stock (so every
hash checks out); the auditor recomputes the price of every sale from the
schedule in force and the units sold before it, so a sale no longer at its
price -- or a schedule that breaks section 5's shape rules -- is still
caught, a domain-rule finding (exit 4) located at or after the forged event."""

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
from tests.integration.test_verify_ledger import Store
from tests.strategies import good_spec

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = "2026-12-01T13:00:00.000000Z"


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pricing") / "ledger.db"
    now = [T0]
    with Ledger(DatabaseURL.parse(f"sqlite:///{path}"), clock=lambda: now[0]) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        tiers = [{"name": "own", "quota": 10}, {"name": "view", "quota": 10}]
        good = ledger.mint(good_spec(tiers=tiers), idempotency_key="m")["good_id"]

        def sell(tier: str, key: str, amount: int, quantity: int = 1) -> None:
            ledger.sell(
                good, tier, buyer="ann", channel="shop", quantity=quantity,
                unit_price=Money(amount, "EUR"), idempotency_key=key,
            )  # fmt: skip

        steps = [{"price": eur(100)}, {"after_sold": 2, "price": eur(150)}]
        ledger.set_prices(good, "own", steps=steps, idempotency_key="p1")
        sell("own", "s1", 100, quantity=2)
        sell("own", "s2", 150)
        timed = [{"price": eur(100)}, {"at": LATER, "price": eur(80)}]
        ledger.set_prices(good, "view", steps=timed, idempotency_key="p2")
        sell("view", "v1", 100)
        now[0] = T0 + timedelta(hours=1)
        sell("view", "v2", 80)
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "ledger.db"
    shutil.copy(template, copy)
    return Store(copy)


def test_the_honest_store_verifies_with_both_kinds_of_schedule(store: Store) -> None:
    report = verify_store(store.url)
    assert report.ok, report.first
    assert report.by_type["stock.price-set"] == 2


def _steps(nth: int, change: Callable[[list[dict[str, Any]]], None]) -> Callable[[Store], int]:
    def forge(store: Store) -> int:
        row = store.find("stock.price-set", nth)
        store.edit(row, lambda p: change(p["steps"]))
        store.rechain(row.aggregate_id)
        return row.rowid

    return forge


CASES: list[tuple[str, Callable[[Store], int], str]] = [
    # (case, forgery, the event type of the first finding)
    (
        "the step reached one sale later",
        _steps(0, lambda s: s[1].update(after_sold=3)),
        "stock.sold",
    ),
    ("another first price", _steps(0, lambda s: s[0].update(price=eur(90))), "stock.sold"),
    ("the time step moved later", _steps(1, lambda s: s[1].update(at="2026-12-01T14:00:00.000000Z")), "stock.sold"),
    ("a first step with a threshold", _steps(1, lambda s: s[0].update(after_sold=1)), "stock.price-set"),
    ("a price in another currency", _steps(0, lambda s: s[1].update(price={"amount": 150, "currency": "USD"})), "stock.price-set"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "forgery", "where"), CASES, ids=[c[0] for c in CASES])
def test_each_forged_schedule_is_caught(
    store: Store, case: str, forgery: Callable[[Store], int], where: str
) -> None:
    rowid = forgery(store)
    report = verify_store(store.url)
    found = [f for f in report.findings if f.check == "price-rule"]
    assert found, f"{case}: {[str(f) for f in report.findings]}"
    assert exit_code(f.check for f in report.findings) == 4  # a domain rule, not the chain
    assert found[0].position is not None
    assert found[0].position >= rowid
    assert found[0].event_type == where, str(found[0])
