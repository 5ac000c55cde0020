"""Primary-sale rules, decided by the domain alone (no store): where a sale
comes from (SaleSource), the per-buyer limit, channels' pools, rate rules and
the early bird."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import (
    BuyerLimitError,
    EarlyBirdPriceError,
    InvalidInputError,
    PoolShortError,
    RateLimitedError,
    SaleWindowError,
    SoldOutError,
)
from ledger.domain.good import Good, GoodSpec
from ledger.domain.sale import SaleSource, check_buyer_limit
from ledger.domain.stock import TierStock
from tests.strategies import good_spec

NOW = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)  # inside the early bird, before the sale
SALE_OPENS = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
EARLY = {"amount": 500, "currency": "EUR"}
FULL = {"amount": 1_000, "currency": "EUR"}


def stock_of(quota: int = 10, **tier: Any) -> TierStock:
    spec = good_spec(tiers=[{"name": "own", "quota": quota} | tier])
    good = Good.mint(GoodSpec.from_json(spec), NOW)
    return TierStock.open(good, "own", NOW)


def early_stock() -> TierStock:
    spec = good_spec(
        tiers=[
            {
                "name": "own",
                "quota": 10,
                "early_bird": {
                    "quantity": 3,
                    "price": EARLY,
                    "opens_at": "2026-12-01T08:00:00Z",
                    "closes_at": "2026-12-01T10:00:00Z",
                },
            }
        ]
    )
    spec["edition"] = {"policy": "absolute", "sale_opens_at": "2026-12-01T09:00:00Z"}
    good = Good.mint(GoodSpec.from_json(spec), NOW - timedelta(days=1))
    return TierStock.open(good, "own", NOW - timedelta(days=1))


def sell(
    stock: TierStock,
    quantity: int = 1,
    *,
    channel: str = "shop",
    price: dict[str, Any] = FULL,
    now: datetime = NOW,
    source: SaleSource = SaleSource.DIRECT,
) -> list[int]:
    return stock.sell(
        sale_id=f"s{stock.version}",
        buyer="carol",
        channel=channel,
        quantity=quantity,
        unit_price=price,
        split=[],
        now=now,
        source=source,
    )


# -- SaleSource --------------------------------------------------------------------------
def test_each_sale_source_says_whether_the_pool_comes_first_and_early_birds_count() -> None:
    assert [(s.draws_pool, s.may_be_early_bird) for s in SaleSource] == [
        (True, True),  # DIRECT
        (False, False),  # HOLD
        (True, False),  # LATE_HOLD
    ]


def test_a_hold_sale_never_draws_the_pool_and_a_late_one_does() -> None:
    for source, pool_left in ((SaleSource.HOLD, 3), (SaleSource.LATE_HOLD, 1)):
        stock = stock_of()
        stock.allot(channel="shop", quantity=3, overflow=True, now=NOW)
        sell(stock, 2, source=source)
        assert stock.pools["shop"]["free"] == pool_left
        assert stock.issued == 2


# -- buyer limit -------------------------------------------------------------------------
def test_the_buyer_limit_refuses_the_unit_over_it() -> None:
    check_buyer_limit(buyer="ann", tier="own", limit=5, bought=3, quantity=2)
    with pytest.raises(BuyerLimitError, match="at most 5 of tier 'own' and has bought 3"):
        check_buyer_limit(buyer="ann", tier="own", limit=5, bought=3, quantity=3)


@given(
    limit=st.none() | st.integers(1, 50),
    bought=st.integers(0, 50),
    quantity=st.integers(1, 50),
)
def test_the_buyer_limit_allows_exactly_up_to_the_limit(
    limit: int | None, bought: int, quantity: int
) -> None:
    allowed = limit is None or bought + quantity <= limit
    try:
        check_buyer_limit(buyer="ann", tier="own", limit=limit, bought=bought, quantity=quantity)
    except BuyerLimitError:
        assert not allowed
    else:
        assert allowed


# -- pools -------------------------------------------------------------------------------
def test_a_pool_is_taken_from_the_shared_stock_and_sold_first() -> None:
    stock = stock_of()
    stock.allot(channel="shop", quantity=4, overflow=False, now=NOW)
    assert (stock.pooled, stock.available) == (4, 6)
    assert stock.sources("shop", 3) == (3, 0)
    assert stock.sources("web", 6) == (0, 6)  # another channel: the shared stock only
    with pytest.raises(SoldOutError):
        stock.sources("web", 7)
    sell(stock, 3)
    assert (stock.pools["shop"]["free"], stock.available) == (1, 6)


def test_a_pool_without_overflow_never_sells_past_itself() -> None:
    stock = stock_of()
    stock.allot(channel="shop", quantity=2, overflow=False, now=NOW)
    with pytest.raises(SoldOutError) as refused:
        sell(stock, 3)
    assert refused.value.available == 2
    assert stock.issued == 0  # refused before anything changed


def test_a_pool_with_overflow_sells_on_from_the_shared_stock() -> None:
    stock = stock_of()
    stock.allot(channel="shop", quantity=2, overflow=True, now=NOW)
    assert stock.sources("shop", 5) == (2, 3)
    sell(stock, 5)
    assert (stock.pools["shop"]["free"], stock.issued, stock.available) == (0, 5, 5)


def test_only_a_pools_unsold_units_go_back() -> None:
    stock = stock_of()
    stock.allot(channel="shop", quantity=3, overflow=False, now=NOW)
    sell(stock, 2)
    with pytest.raises(PoolShortError):
        stock.return_pool(channel="shop", quantity=2, now=NOW)
    stock.return_pool(channel="shop", quantity=1, now=NOW)
    assert (stock.pooled, stock.available) == (0, 8)
    with pytest.raises(SoldOutError):
        stock.allot(channel="web", quantity=9, overflow=False, now=NOW)


@given(quantity=st.integers(1, 12), pooled=st.integers(1, 10), overflow=st.booleans())
def test_sources_take_the_pool_first_and_never_more_than_there_is(
    quantity: int, pooled: int, overflow: bool
) -> None:
    stock = stock_of()
    stock.allot(channel="shop", quantity=pooled, overflow=overflow, now=NOW)
    possible = quantity <= pooled or (overflow and quantity <= 10)
    try:
        drawn, rest = stock.sources("shop", quantity)
    except SoldOutError:
        assert not possible
    else:
        assert possible
        assert (drawn, rest) == (min(quantity, pooled), quantity - min(quantity, pooled))


def test_freed_units_count_as_back_in_the_shared_stock() -> None:
    stock = stock_of(quota=4)
    stock.reserve(hold_id="h", channel="shop", quantity=3, ttl_seconds=60, now=NOW)
    with pytest.raises(SoldOutError):
        stock.sources("shop", 2)
    assert stock.sources("shop", 4, freed=3) == (0, 4)


# -- rates -------------------------------------------------------------------------------
def test_a_rate_rule_caps_a_channels_sales_per_minute() -> None:
    stock = stock_of()
    stock.set_rate(channel="shop", per_minute=3, now=NOW)
    sell(stock, 2)
    with pytest.raises(RateLimitedError, match="has sold 2 this minute"):
        sell(stock, 2)
    sell(stock, 2, channel="web")  # another channel has no rule
    sell(stock, 1)
    sell(stock, 3, now=NOW + timedelta(minutes=1))  # a new minute starts from zero
    assert stock.issued == 8


def test_a_rate_rule_is_bounded_and_can_be_lifted() -> None:
    stock = stock_of()
    with pytest.raises(InvalidInputError):
        stock.set_rate(channel="shop", per_minute=0, now=NOW)
    stock.set_rate(channel="shop", per_minute=1, now=NOW)
    sell(stock)
    stock.set_rate(channel="shop", per_minute=None, now=NOW)
    sell(stock, 5)
    assert stock.issued == 6


@given(per_minute=st.integers(1, 10), sales=st.lists(st.integers(1, 4), max_size=6))
def test_a_minute_never_sells_more_than_its_rate(per_minute: int, sales: list[int]) -> None:
    stock = stock_of(quota=100)
    stock.set_rate(channel="shop", per_minute=per_minute, now=NOW)
    for quantity in sales:
        with contextlib.suppress(RateLimitedError):
            sell(stock, quantity)
    assert stock.issued <= per_minute


# -- early bird --------------------------------------------------------------------------
def test_the_early_bird_sells_before_the_sale_at_its_own_price() -> None:
    stock = early_stock()
    with pytest.raises(EarlyBirdPriceError):
        sell(stock, price=FULL)
    sell(stock, 2, price=EARLY)
    assert (stock.early_bird_sold, stock.issued) == (2, 2)
    assert stock.early_bird_for(1, NOW)
    assert not stock.early_bird_for(2, NOW)  # only one left in the allotment


def test_past_its_quantity_the_early_bird_is_over_and_the_sale_window_counts() -> None:
    stock = early_stock()
    sell(stock, 3, price=EARLY)
    with pytest.raises(SaleWindowError):
        sell(stock, price=EARLY)
    sell(stock, price=FULL, now=SALE_OPENS)
    assert (stock.early_bird_sold, stock.issued) == (3, 4)


def test_outside_its_window_there_is_no_early_bird() -> None:
    stock = early_stock()
    assert not stock.early_bird_for(1, datetime(2026, 12, 1, 7, 59, tzinfo=UTC))
    assert not stock.early_bird_for(1, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    sell(stock, price=FULL, now=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    assert stock.early_bird_sold == 0


def test_a_holds_sale_is_never_an_early_bird_sale() -> None:
    stock = early_stock()
    with pytest.raises(SaleWindowError):  # no early bird: the sale window counts
        sell(stock, price=EARLY, source=SaleSource.HOLD)
    sell(stock, price=FULL, now=SALE_OPENS, source=SaleSource.LATE_HOLD)
    assert (stock.early_bird_sold, stock.issued) == (0, 1)


@given(quantities=st.lists(st.integers(1, 3), max_size=6))
def test_the_early_bird_never_sells_past_its_quantity(quantities: list[int]) -> None:
    stock = early_stock()
    for quantity in quantities:
        with contextlib.suppress(SaleWindowError):
            sell(stock, quantity, price=EARLY)
    assert stock.early_bird_sold == stock.issued <= 3
