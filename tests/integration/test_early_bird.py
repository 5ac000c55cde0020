"""Early-bird allotments on both backends: their own price and window, a
quantity that runs out, holds that never count; and a forger who edits
early-bird sales is caught by the auditor."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.domain import errors
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from tests.audit import audit
from tests.clock import Clock
from tests.integration.test_verify_ledger import Store
from tests.strategies import good_spec

EARLY = Money(500, "EUR")
FULL = Money(1_000, "EUR")
T0 = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)  # inside the early bird, before the sale


def early_spec(**tier: Any) -> dict[str, Any]:
    spec = good_spec(
        tiers=[
            {
                "name": "own",
                "quota": 10,
                "early_bird": {
                    "quantity": 3,
                    "price": EARLY.to_json(),
                    "opens_at": "2026-12-01T08:00:00Z",
                    "closes_at": "2026-12-01T10:00:00Z",
                },
            }
            | tier
        ]
    )
    spec["edition"] = {"policy": "absolute", "sale_opens_at": "2026-12-01T09:00:00Z"}
    return spec


@pytest.fixture
def shop(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str, Clock]]:
    clock = Clock(T0)
    with Ledger(store_url, clock=clock) as ledger:
        ledger.register_channel("shop", "shop", 500, idempotency_key="c")
        good = str(ledger.mint(early_spec(), idempotency_key="m")["good_id"])
        yield ledger, good, clock


def sell(ledger: Ledger, good: str, buyer: str, quantity: int, price: Money) -> Any:
    return ledger.sell(
        good,
        "own",
        buyer=buyer,
        channel="shop",
        quantity=quantity,
        unit_price=price,
        idempotency_key=f"{buyer}-{quantity}-{price.amount}",
    )


def test_the_early_bird_has_its_own_price_window_and_quantity(shop: Any) -> None:
    ledger, good, clock = shop
    with pytest.raises(errors.EarlyBirdPriceError, match="500 EUR"):
        sell(ledger, good, "ann", 1, FULL)  # the allotment's price, nothing else
    assert len(sell(ledger, good, "ann", 2, EARLY)["units"]) == 2
    # Three units in all: two more do not fit, and before 09:00 there is no
    # other sale to fall back on.
    with pytest.raises(errors.SaleWindowError):
        sell(ledger, good, "bob", 2, EARLY)
    assert len(sell(ledger, good, "bob", 1, EARLY)["units"]) == 1
    stock = ledger.stock(good, "own")
    assert (stock.early_bird_sold, stock.issued) == (3, 3)
    clock.advance(3_600)  # 09:30: the sale is open, the early bird's units are gone
    assert len(sell(ledger, good, "cat", 2, FULL)["units"]) == 2
    assert ledger.stock(good, "own").early_bird_sold == 3
    audit(ledger)


def test_once_the_sale_opens_the_early_bird_still_comes_first(shop: Any) -> None:
    ledger, good, clock = shop
    clock.advance(3_600)  # 09:30: both windows open, the allotment untouched
    with pytest.raises(errors.EarlyBirdPriceError):
        sell(ledger, good, "ann", 1, FULL)
    sell(ledger, good, "ann", 3, EARLY)
    sell(ledger, good, "bob", 1, FULL)  # the allotment is used up: the usual sale
    clock.advance(3_600)  # 10:30: the early bird is over
    assert ledger.stock(good, "own").early_bird_sold == 3
    audit(ledger)


def test_a_hold_paid_in_the_early_birds_window_is_not_an_early_bird_sale(shop: Any) -> None:
    ledger, good, clock = shop
    clock.advance(3_600)  # 09:30
    hold = ledger.reserve(
        good, "own", channel="shop", quantity=2, ttl_seconds=60, idempotency_key="h"
    )["hold_id"]
    paid = ledger.commit_hold(
        good, "own", hold, buyer="ann", quantity=2, unit_price=FULL, idempotency_key="p"
    )
    assert paid["outcome"] == "sold"
    assert ledger.stock(good, "own").early_bird_sold == 0
    audit(ledger)


@pytest.mark.parametrize(
    ("early_bird", "field"),
    [
        ({"quantity": 11}, "quantity"),
        ({"price": {"amount": 5, "currency": "USD"}}, "price"),
        ({"closes_at": "2026-12-01T07:00:00Z"}, "closes_at"),
        ({"opens_at": None}, "opens_at"),
    ],
)
def test_a_malformed_early_bird_is_refused_at_mint(
    sqlite_url: DatabaseURL, early_bird: dict[str, Any], field: str
) -> None:
    base = early_spec()["tiers"][0]["early_bird"]
    with Ledger(sqlite_url) as ledger, pytest.raises(errors.InvalidInputError, match=field):
        ledger.mint(early_spec(early_bird=base | early_bird), idempotency_key="m")


# -- the forger ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("early") / "ledger.db"
    clock = Clock(T0)
    with Ledger(DatabaseURL.parse(f"sqlite:///{path}"), clock=clock) as ledger:
        ledger.register_channel("shop", "shop", 500, idempotency_key="c")
        good = str(ledger.mint(early_spec(), idempotency_key="m")["good_id"])
        sell(ledger, good, "ann", 2, EARLY)
        clock.advance(3_600)
        sell(ledger, good, "bob", 1, EARLY)
        sell(ledger, good, "cat", 1, FULL)
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "ledger.db"
    shutil.copy(template, copy)
    return Store(copy)


def test_the_honest_store_verifies(store: Store) -> None:
    report = verify_store(store.url)
    assert report.ok, report.first


@pytest.mark.parametrize(
    ("what", "nth", "change", "check"),
    [
        (
            "the early price on the later, full-price sale",
            2,
            lambda p: p.update(unit_price=EARLY.to_json(), early_bird=True),
            "early-bird",
        ),
        (
            "an early-bird sale at another price",
            0,
            lambda p: p.update(unit_price=FULL.to_json()),
            "early-bird",
        ),
        ("a fourth early-bird unit", 2, lambda p: p.update(early_bird=True), "early-bird"),
        (
            "an early-bird sale passed off as a plain one before the sale",
            0,
            lambda p: p.pop("early_bird"),
            "sale-window",
        ),
        ("early_bird written as false", 0, lambda p: p.update(early_bird=False), "bad-payload"),
    ],
)
def test_a_forged_early_bird_sale_is_caught(
    store: Store, what: str, nth: int, change: Any, check: str
) -> None:
    row = store.find("stock.sold", nth)
    store.edit(row, change)
    store.rechain(row.aggregate_id)
    report = verify_store(store.url)
    assert not report.ok, what
    assert check in {f.check for f in report.findings}, (what, report.findings[:3])
