"""Price rules by sell-through, decided by the domain alone: the schedule,
the price in force, and what the tier's stock refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.domain.errors import EarlyBirdPriceError, InvalidInputError, PriceRuleError
from ledger.domain.good import Good, GoodSpec
from ledger.domain.pricing import price_in_force, read_schedule
from ledger.domain.stock import TierStock
from tests.strategies import good_spec

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


BY_SOLD = [
    {"price": eur(100)},
    {"after_sold": 2, "price": eur(150)},
    {"after_sold": 5, "price": eur(200)},
]
BY_TIME = [{"price": eur(100)}, {"at": "2026-12-01T13:00:00Z", "price": eur(80)}]


def test_the_price_in_force_steps_with_units_sold_before_the_sale() -> None:
    steps = read_schedule(BY_SOLD, "EUR")
    assert steps is not None
    assert [price_in_force(steps, sold, NOW)["amount"] for sold in range(7)] == [
        100, 100, 150, 150, 150, 200, 200,
    ]  # fmt: skip


def test_the_price_in_force_steps_with_time() -> None:
    steps = read_schedule(BY_TIME, "EUR")
    assert steps is not None
    assert steps[1]["at"] == "2026-12-01T13:00:00.000000Z"
    assert price_in_force(steps, 0, NOW)["amount"] == 100
    assert price_in_force(steps, 0, NOW + timedelta(hours=1))["amount"] == 80


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([], "steps"),
        ([{"after_sold": 1, "price": eur(1)}], "steps[0]"),
        ([{"price": eur(1)}, {"price": eur(2)}], "steps[1]"),
        ([{"price": eur(1)}, {"after_sold": 3, "price": eur(2)}, {"after_sold": 3, "price": eur(3)}], "steps[2]"),
        ([{"price": eur(1)}, {"after_sold": 3, "at": "2026-12-01T13:00:00Z", "price": eur(2)}], "steps[1]"),
        ([{"price": eur(1)}, {"after_sold": 3, "price": eur(2)}, {"at": "2026-12-01T13:00:00Z", "price": eur(3)}], "steps[2]"),
        ([{"price": {"amount": 1, "currency": "USD"}}], "steps[0].price"),
        ([{"price": eur(1), "extra": 1}], "steps[0]"),
    ],
)  # fmt: skip
def test_a_bad_schedule_is_refused_naming_its_field(steps: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        read_schedule(steps, "EUR")
    assert caught.value.field == field


def stock_of(**tier: Any) -> TierStock:
    spec = good_spec(tiers=[{"name": "own", "quota": 10} | tier])
    return TierStock.open(Good.mint(GoodSpec.from_json(spec), NOW), "own", NOW)


def sell(stock: TierStock, amount: int, quantity: int = 1, now: datetime = NOW) -> list[int]:
    return stock.sell(
        sale_id=f"s{stock.version}",
        buyer="ann",
        channel="shop",
        quantity=quantity,
        unit_price=eur(amount),
        split=[],
        now=now,
    )


def test_a_sale_pays_the_price_in_force_or_is_refused_with_it() -> None:
    stock = stock_of()
    sell(stock, 999)  # no schedule: any price
    stock.set_prices(steps=read_schedule(BY_SOLD, "EUR"), now=NOW)
    with pytest.raises(PriceRuleError, match="sells at 100 EUR") as caught:
        sell(stock, 150)
    assert caught.value.problem_extra == {"price": eur(100)}
    sell(stock, 100, quantity=3)  # 1 sold before it: all three at 100, crossing the step
    with pytest.raises(PriceRuleError, match="sells at 150 EUR"):
        sell(stock, 100)
    sell(stock, 150)  # the fifth unit
    sell(stock, 200)  # 5 sold before it: the third step
    stock.set_prices(steps=None, now=NOW)
    sell(stock, 1)


def test_an_early_bird_sale_is_at_the_early_bird_price_whatever_the_schedule() -> None:
    early = {"quantity": 2, "price": eur(50), "opens_at": "2026-12-01T11:00:00Z"}
    early["closes_at"] = "2026-12-01T14:00:00Z"
    stock = stock_of(early_bird=early)
    stock.set_prices(steps=read_schedule(BY_SOLD, "EUR"), now=NOW)
    with pytest.raises(EarlyBirdPriceError):
        sell(stock, 100)
    sell(stock, 50, quantity=2)  # the allotment, at its price
    with pytest.raises(PriceRuleError, match="sells at 150 EUR"):
        sell(stock, 50)  # the allotment is spent: the schedule (2 sold: the second step)
    sell(stock, 150)
