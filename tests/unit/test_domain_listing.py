"""Pause, resume and delist, decided by the tier's stock alone (no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.domain import listing
from ledger.domain.errors import (
    DelistedError,
    InvalidInputError,
    ListingStateError,
    PausedError,
)
from ledger.domain.good import Good, GoodSpec
from ledger.domain.stock import TierStock
from tests.strategies import good_spec

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EUR = {"amount": 100, "currency": "EUR"}


def stock_of(quota: int = 10) -> TierStock:
    spec = good_spec(tiers=[{"name": "own", "quota": quota}], policy="restockable")
    spec["tiers"][0]["lifetime_cap"] = 100
    return TierStock.open(Good.mint(GoodSpec.from_json(spec), NOW), "own", NOW)


def sell(stock: TierStock, sale_id: str = "s", quantity: int = 1) -> list[int]:
    return stock.sell(
        sale_id=sale_id,
        buyer="ann",
        channel="shop",
        quantity=quantity,
        unit_price=EUR,
        split=[],
        now=NOW,
    )


def refusals(stock: TierStock) -> dict[str, type[Exception] | None]:
    """What each of a sale, a hold and a restock does now (None: allowed)."""
    outcome: dict[str, type[Exception] | None] = {}
    attempts: dict[str, Any] = {
        "sale": lambda: stock.check_sale(1, NOW, unit_price=EUR),
        "hold": lambda: stock.reserve(
            hold_id="h-new", channel="shop", quantity=1, ttl_seconds=60, now=NOW
        ),
        "restock": lambda: stock.restock(1, NOW),
    }
    for what, attempt in attempts.items():
        try:
            attempt()
            outcome[what] = None
        except (PausedError, DelistedError) as error:
            outcome[what] = type(error)
    return outcome


def test_a_paused_tier_refuses_sales_holds_and_restocks_saying_why_and_since_when() -> None:
    stock = stock_of()
    stock.pause(scope="tier", reason="wrong price on the page", now=NOW)
    assert listing.sale_state(stock.paused, stock.delisted) == "paused"
    with pytest.raises(
        PausedError, match=r"paused since 2026-12-01T12:00:00\.000000Z: wrong price"
    ):
        sell(stock)
    assert refusals(stock) == {"sale": PausedError, "hold": PausedError, "restock": PausedError}
    with pytest.raises(PausedError) as caught:
        sell(stock)
    assert caught.value.problem_extra == {
        "paused": {
            "scope": "tier",
            "reason": "wrong price on the page",
            "since": "2026-12-01T12:00:00.000000Z",
        }
    }
    stock.resume(scope="tier", reason="fixed", now=NOW + timedelta(minutes=1))
    assert sell(stock) == [1]
    assert listing.sale_state(stock.paused, stock.delisted) == "on-sale"


def test_a_hold_made_before_the_pause_cannot_be_paid_while_paused_but_lives_on() -> None:
    stock = stock_of()
    stock.reserve(hold_id="h", channel="shop", quantity=2, ttl_seconds=60, now=NOW)
    stock.pause(scope="tier", reason="audit", now=NOW)
    with pytest.raises(PausedError):
        stock.commit_hold(hold_id="h", sale_id="s", quantity=2, now=NOW)
    assert stock.holds["h"]["state"] == "held"  # nothing changed
    stock.release_hold("h", now=NOW)  # releases and expiries go on
    assert stock.reserved == 0


def test_the_goods_pause_and_the_tiers_own_are_independent() -> None:
    stock = stock_of()
    stock.pause(scope="tier", reason="tier", now=NOW)
    stock.pause(scope="good", reason="good", now=NOW)
    with pytest.raises(PausedError, match="the good of tier 'own' is paused"):
        sell(stock)  # the good's pause is named first
    stock.resume(scope="good", reason="good back", now=NOW)
    with pytest.raises(PausedError, match="tier 'own' is paused"):
        sell(stock)
    with pytest.raises(ListingStateError, match="is not paused"):
        stock.resume(scope="good", reason="again", now=NOW)
    with pytest.raises(ListingStateError, match="paused already"):
        stock.pause(scope="tier", reason="twice", now=NOW)
    stock.resume(scope="tier", reason="tier back", now=NOW)
    assert sell(stock) == [1]


def test_delisting_is_final() -> None:
    stock = stock_of()
    sold = sell(stock, quantity=2)
    stock.pause(scope="tier", reason="checking", now=NOW)
    stock.delist(scope="good", reason="discontinued", now=NOW)
    assert listing.sale_state(stock.paused, stock.delisted) == "delisted"
    assert refusals(stock) == {
        "sale": DelistedError,
        "hold": DelistedError,
        "restock": DelistedError,
    }
    for change in (stock.pause, stock.resume, stock.delist):
        with pytest.raises(DelistedError, match="delisting is final"):
            change(scope="tier", reason="try", now=NOW)
    with pytest.raises(DelistedError):
        stock.join_waitlist(entry_id="w", buyer="bob", channel="shop", quantity=20, now=NOW)
    # Units sold stay valid: a refund still takes a serial back.
    stock.take_back(serial=sold[0], refund_id="r", now=NOW)
    assert stock.issued == 1


def test_a_paused_tier_can_still_be_waited_for_and_its_pools_managed() -> None:
    stock = stock_of(quota=1)
    sell(stock)
    stock.pause(scope="tier", reason="restock coming", now=NOW)
    assert stock.join_waitlist(entry_id="w", buyer="bob", channel="shop", quantity=1, now=NOW) == 1
    stock.resume(scope="tier", reason="go", now=NOW)
    assert stock.restock(1, NOW) == ["w"]  # the restock offers the waitlist as usual


@pytest.mark.parametrize(
    ("scope", "reason", "field"),
    [("shop", "x", "scope"), ("tier", "", "reason"), ("tier", " padded ", "reason")],
)
def test_bad_scope_or_reason_is_invalid_input(scope: str, reason: str, field: str) -> None:
    stock = stock_of()
    with pytest.raises(InvalidInputError) as caught:
        stock.pause(scope=scope, reason=reason, now=NOW)
    assert caught.value.field == field
    assert stock.paused == {}
