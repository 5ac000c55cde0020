"""Holds, the late rule of their payment, and the waitlist, decided by the
domain alone (no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain import limits
from ledger.domain.errors import (
    AbsoluteEditionError,
    ForbiddenError,
    HoldNotFoundError,
    HoldResolvedError,
    InvalidInputError,
    InvariantError,
    SoldOutError,
    WaitlistError,
)
from ledger.domain.good import Good, GoodSpec
from ledger.domain.holds import HoldPayment, hold_payment, settle_hold
from ledger.domain.sale import SaleSource
from ledger.domain.stock import TierStock
from tests.strategies import good_spec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TTL = 300
LATE = NOW + timedelta(seconds=TTL)  # the hold's time is up (exactly)


def stock_of(quota: int = 10, policy: str = "absolute", **tier: Any) -> TierStock:
    spec = good_spec(tiers=[{"name": "own", "quota": quota} | tier], policy=policy)
    return TierStock.open(Good.mint(GoodSpec.from_json(spec), NOW), "own", NOW)


def held(stock: TierStock, quantity: int, hold_id: str = "h", channel: str = "shop") -> str:
    stock.reserve(hold_id=hold_id, channel=channel, quantity=quantity, ttl_seconds=TTL, now=NOW)
    return hold_id


def pay(
    stock: TierStock, quantity: int, *, now: datetime, channel: str | None = None
) -> HoldPayment:
    return hold_payment(stock, "h", quantity=quantity, channel=channel, now=now)


def counts(stock: TierStock) -> tuple[int, int, int]:
    return stock.issued, stock.reserved, stock.available


# -- holds -------------------------------------------------------------------------------
def test_a_hold_keeps_its_units_from_everyone_else() -> None:
    stock = stock_of()
    held(stock, 4)
    assert counts(stock) == (0, 4, 6)
    with pytest.raises(SoldOutError):
        stock.reserve(hold_id="g", channel="web", quantity=7, ttl_seconds=TTL, now=NOW)


def test_a_hold_is_bounded_in_quantity_and_time() -> None:
    stock = stock_of()
    for quantity, ttl in ((0, TTL), (limits.HOLD_QUANTITY_MAX + 1, TTL), (1, 0)):
        with pytest.raises(InvalidInputError):
            stock.reserve(hold_id="h", channel="shop", quantity=quantity, ttl_seconds=ttl, now=NOW)
    assert stock.holds == {}


def test_a_committed_hold_returns_what_it_did_not_sell() -> None:
    stock = stock_of()
    held(stock, 4)
    stock.commit_hold(hold_id="h", sale_id="s", quantity=3, now=NOW)
    assert stock.holds["h"]["state"] == "committed"
    assert counts(stock) == (0, 0, 10)  # the sale that follows takes its 3


def test_a_hold_is_resolved_once() -> None:
    stock = stock_of()
    held(stock, 2)
    stock.release_hold("h", now=NOW)
    with pytest.raises(HoldResolvedError, match="already released"):
        stock.release_hold("h", now=NOW)
    with pytest.raises(HoldResolvedError):
        stock.commit_hold(hold_id="h", sale_id="s", quantity=1, now=NOW)
    with pytest.raises(HoldNotFoundError):
        stock.hold("nope")


def test_due_holds_expire_soonest_first_and_only_once() -> None:
    stock = stock_of()
    stock.reserve(hold_id="b", channel="shop", quantity=1, ttl_seconds=60, now=NOW)
    stock.reserve(hold_id="a", channel="shop", quantity=1, ttl_seconds=120, now=NOW)
    stock.reserve(hold_id="c", channel="shop", quantity=1, ttl_seconds=600, now=NOW)
    assert stock.expire_due(NOW + timedelta(seconds=59)) == []
    assert stock.expire_due(NOW + timedelta(seconds=120)) == ["b", "a"]
    assert stock.expire_due(NOW + timedelta(seconds=120)) == []
    assert [stock.holds[h]["state"] for h in "abc"] == ["expired", "expired", "held"]
    assert counts(stock) == (0, 1, 9)


# -- the late rule -----------------------------------------------------------------------
def test_a_payment_on_time_buys_the_holds_units() -> None:
    stock = stock_of()
    held(stock, 4)
    payment = pay(stock, 3, now=LATE - timedelta(microseconds=1))
    assert payment is HoldPayment.ON_TIME
    assert (payment.value, payment.source) == ("sold", SaleSource.HOLD)
    assert stock.holds["h"]["state"] == "held"  # deciding changes nothing


def test_a_late_payment_buys_afresh_once_the_holds_units_are_back() -> None:
    stock = stock_of(quota=4)
    held(stock, 4)
    payment = pay(stock, 4, now=LATE)  # expiry not recorded yet: its units count as back
    assert (payment, payment.source) == (HoldPayment.LATE, SaleSource.LATE_HOLD)
    settle_hold(stock, payment, "h", sale_id="s", quantity=4, now=LATE)
    assert stock.holds["h"]["state"] == "expired"
    assert counts(stock) == (0, 0, 4)


def test_a_late_payment_finding_nothing_left_is_a_refund_owed() -> None:
    stock = stock_of(quota=4)
    held(stock, 2)
    stock.expire_due(LATE)
    stock.reserve(hold_id="g", channel="web", quantity=3, ttl_seconds=TTL, now=LATE)
    payment = pay(stock, 2, now=LATE)
    assert payment is HoldPayment.REFUND_OWED
    with pytest.raises(InvariantError):
        _ = payment.source
    settle_hold(stock, payment, "h", sale_id="s", quantity=2, now=LATE)  # nothing to record
    assert stock.holds["h"]["state"] == "expired"


def test_a_late_payment_draws_the_channels_pool_first() -> None:
    stock = stock_of(quota=4)
    held(stock, 2)
    stock.expire_due(LATE)
    stock.allot(channel="shop", quantity=2, overflow=False, now=LATE)
    stock.reserve(hold_id="g", channel="web", quantity=2, ttl_seconds=TTL, now=LATE)
    assert pay(stock, 2, now=LATE) is HoldPayment.LATE  # from the pool alone


def test_a_payment_is_refused_for_another_channel_a_resolved_hold_or_too_much() -> None:
    stock = stock_of()
    held(stock, 2)
    with pytest.raises(ForbiddenError):
        pay(stock, 1, now=NOW, channel="web")
    with pytest.raises(InvalidInputError, match="must be 1 to 2"):
        pay(stock, 3, now=NOW)
    with pytest.raises(HoldNotFoundError):
        hold_payment(stock, "nope", quantity=1, channel=None, now=NOW)
    stock.release_hold("h", now=NOW)
    with pytest.raises(HoldResolvedError):
        pay(stock, 1, now=NOW)


def test_settling_on_time_commits_the_hold() -> None:
    stock = stock_of()
    held(stock, 3)
    settle_hold(stock, HoldPayment.ON_TIME, "h", sale_id="s", quantity=1, now=NOW)
    assert stock.holds["h"]["state"] == "committed"
    assert counts(stock) == (0, 0, 10)


@given(
    quota=st.integers(1, 10),
    hold=st.integers(1, 5),
    others=st.integers(0, 10),
    quantity=st.integers(1, 5),
    delay=st.integers(0, 2 * TTL),
)
def test_the_late_rule_sells_late_exactly_when_the_units_are_there(
    quota: int, hold: int, others: int, quantity: int, delay: int
) -> None:
    stock = stock_of(quota=quota)
    if hold > quota:
        return
    held(stock, hold)
    others = min(others, quota - hold)
    if others:
        stock.reserve(hold_id="g", channel="web", quantity=others, ttl_seconds=3 * TTL, now=NOW)
    now = NOW + timedelta(seconds=delay)
    if quantity > hold:
        with pytest.raises(InvalidInputError):
            pay(stock, quantity, now=now)
        return
    payment = pay(stock, quantity, now=now)
    if delay < TTL:
        assert payment is HoldPayment.ON_TIME
    else:
        free_after = quota - others
        assert payment is (HoldPayment.LATE if quantity <= free_after else HoldPayment.REFUND_OWED)


# -- waitlist ----------------------------------------------------------------------------
def test_one_waits_only_for_what_cannot_be_bought_now() -> None:
    stock = stock_of(quota=2, policy="restockable", lifetime_cap=10)
    with pytest.raises(WaitlistError, match="buy them rather than wait"):
        stock.join_waitlist(entry_id="w", buyer="ann", channel="shop", quantity=2, now=NOW)
    assert stock.join_waitlist(entry_id="w", buyer="ann", channel="shop", quantity=3, now=NOW) == 1
    with pytest.raises(AbsoluteEditionError):
        stock_of(quota=2).join_waitlist(
            entry_id="w", buyer="ann", channel="shop", quantity=3, now=NOW
        )


def test_a_restock_offers_holds_in_line_and_nobody_jumps_it() -> None:
    stock = stock_of(quota=1, policy="restockable", lifetime_cap=20)
    for entry, quantity in (("a", 3), ("b", 5), ("c", 2)):
        stock.join_waitlist(entry_id=entry, buyer=entry, channel="shop", quantity=quantity, now=NOW)
    assert stock.restock(5, NOW) == ["a"]  # b's 5 no longer fit: c waits behind b
    assert stock.holds["a"]["quantity"] == 3
    assert [stock.waitlist[e]["state"] for e in "abc"] == ["offered", "waiting", "waiting"]
    assert stock.restock(5, NOW) == ["b", "c"]


def test_an_entry_leaves_the_waitlist_once() -> None:
    stock = stock_of(quota=1, policy="restockable", lifetime_cap=20)
    stock.join_waitlist(entry_id="w", buyer="ann", channel="shop", quantity=2, now=NOW)
    stock.leave_waitlist("w", NOW)
    with pytest.raises(WaitlistError, match="it was left"):
        stock.leave_waitlist("w", NOW)
    assert stock.restock(5, NOW) == []


def test_the_waitlist_is_bounded() -> None:
    stock = stock_of(quota=1, policy="restockable", lifetime_cap=20)
    for n in range(limits.WAITLIST_MAX):
        stock.join_waitlist(entry_id=f"w{n}", buyer="b", channel="shop", quantity=2, now=NOW)
    with pytest.raises(WaitlistError, match="is full"):
        stock.join_waitlist(entry_id="x", buyer="b", channel="shop", quantity=2, now=NOW)
