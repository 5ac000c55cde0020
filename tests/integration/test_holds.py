"""Reservations on both backends: hold, commit, release, expire -- each
exactly once -- the late rule, channel scope, and what the auditor sees."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.domain import errors
from ledger.domain.money import Money
from ledger.projections import ProjectionStore, Views
from ledger.service import Ledger
from ledger.service.holds import sweep
from ledger.store.database import DatabaseURL
from tests.audit import audit
from tests.clock import Clock
from tests.strategies import good_spec

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EUR = Money(1_000, "EUR")


@pytest.fixture
def shop(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str, Clock]]:
    clock = Clock()
    with Ledger(store_url, clock=clock) as ledger:
        for channel in ("shop", "live"):
            ledger.register_channel(channel, channel, 500, idempotency_key=f"ch-{channel}")
        good = ledger.mint(
            good_spec(tiers=[{"name": "own", "quota": 10, "per_buyer_limit": 5}]),
            idempotency_key="mint",
        )["good_id"]
        yield ledger, str(good), clock


def counts(ledger: Ledger, good: str) -> tuple[int, int, int]:
    stock = ledger.stock(good, "own")
    return stock.issued, stock.reserved, stock.available


def test_a_hold_is_committed_in_part_and_the_rest_returns(shop: Any) -> None:
    ledger, good, _ = shop
    hold = ledger.reserve(
        good, "own", channel="shop", quantity=4, ttl_seconds=300, idempotency_key="h"
    )
    assert counts(ledger, good) == (0, 4, 6)
    with pytest.raises(errors.SoldOutError):  # the held units are nobody else's
        ledger.sell(
            good, "own", buyer="x", channel="live", quantity=7, unit_price=EUR, idempotency_key="s"
        )
    sold = ledger.commit_hold(
        good, "own", hold["hold_id"], buyer="ann", quantity=3, unit_price=EUR, idempotency_key="pay"
    )
    assert sold["outcome"] == "sold"
    assert [u["serial"] for u in sold["units"]] == [1, 2, 3]
    assert counts(ledger, good) == (3, 0, 7)
    again = ledger.commit_hold(
        good, "own", hold["hold_id"], buyer="ann", quantity=3, unit_price=EUR, idempotency_key="pay"
    )
    assert again == sold  # the payment callback repeated: same answer, nothing more
    with pytest.raises(errors.HoldResolvedError, match="committed"):
        ledger.commit_hold(
            good,
            "own",
            hold["hold_id"],
            buyer="ann",
            quantity=1,
            unit_price=EUR,
            idempotency_key="pay-2",
        )
    with pytest.raises(errors.HoldResolvedError):
        ledger.release_hold(good, "own", hold["hold_id"], idempotency_key="rel")
    assert counts(ledger, good) == (3, 0, 7)
    audit(ledger)


def test_release_and_expiry_return_the_units_once(shop: Any) -> None:
    ledger, good, clock = shop
    a = ledger.reserve(good, "own", channel="shop", quantity=2, ttl_seconds=60, idempotency_key="a")
    b = ledger.reserve(good, "own", channel="live", quantity=3, ttl_seconds=30, idempotency_key="b")
    assert counts(ledger, good) == (0, 5, 5)
    released = ledger.release_hold(good, "own", a["hold_id"], idempotency_key="rel-a")
    assert released["how"] == "released"
    assert counts(ledger, good) == (0, 3, 7)
    assert ledger.expire_holds(good, "own") == []  # not yet
    clock.advance(30)
    assert ledger.expire_holds(good, "own") == [b["hold_id"]]
    assert ledger.expire_holds(good, "own") == []  # once
    assert counts(ledger, good) == (0, 0, 10)
    audit(ledger)


def test_a_late_payment_buys_what_is_left_or_is_owed_back(shop: Any) -> None:
    ledger, good, clock = shop
    early = ledger.reserve(
        good, "own", channel="shop", quantity=2, ttl_seconds=10, idempotency_key="early"
    )
    late = ledger.reserve(
        good, "own", channel="shop", quantity=3, ttl_seconds=10, idempotency_key="late"
    )
    clock.advance(10)  # both expired; nobody recorded it yet
    first = ledger.commit_hold(
        good,
        "own",
        early["hold_id"],
        buyer="ann",
        quantity=2,
        unit_price=EUR,
        idempotency_key="pay-early",
    )
    assert first["outcome"] == "sold-late"
    assert counts(ledger, good) == (2, 3, 5)  # the other hold is still counted until swept
    assert sweep(ledger, lambda now: [(good, "own")]) == 1
    # Its units went back on sale and were bought before the late payment came.
    ledger.sell(
        good, "own", buyer="bob", channel="live", quantity=5, unit_price=EUR, idempotency_key="rush"
    )
    ledger.sell(
        good,
        "own",
        buyer="dan",
        channel="live",
        quantity=3,
        unit_price=EUR,
        idempotency_key="rush-2",
    )
    owed = ledger.commit_hold(
        good,
        "own",
        late["hold_id"],
        buyer="cat",
        quantity=3,
        unit_price=EUR,
        idempotency_key="pay-late",
    )
    assert owed["outcome"] == "refund-owed"
    assert owed["amount"] == {"amount": 3_000, "currency": "EUR"}
    assert counts(ledger, good) == (10, 0, 0)
    audit(ledger)
    views = Views(ProjectionStore(ledger.event_store.recorder))
    held = {h["hold_id"]: h for h in views.holds(good).items}
    assert held[late["hold_id"]]["state"] == "expired"
    assert held[late["hold_id"]]["refunds_owed"] == 3_000
    assert held[early["hold_id"]]["state"] == "expired"


def test_a_channel_acts_on_its_own_holds_only(shop: Any) -> None:
    ledger, good, _ = shop
    hold = ledger.reserve(
        good,
        "own",
        channel="shop",
        quantity=1,
        ttl_seconds=60,
        idempotency_key="h",
        scope="channel:shop",
    )
    with pytest.raises(errors.ForbiddenError):
        ledger.commit_hold(
            good,
            "own",
            hold["hold_id"],
            buyer="x",
            quantity=1,
            unit_price=EUR,
            idempotency_key="p",
            scope="channel:live",
            channel="live",
        )
    with pytest.raises(errors.ForbiddenError):
        ledger.release_hold(
            good, "own", hold["hold_id"], idempotency_key="r", scope="channel:live", channel="live"
        )
    assert counts(ledger, good) == (0, 1, 9)


def test_bad_holds_are_refused_and_change_nothing(shop: Any) -> None:
    ledger, good, _ = shop
    before = ledger.event_store.recorder.max_notification_id()
    for kwargs, error in [
        ({"quantity": 0, "ttl_seconds": 60}, errors.InvalidInputError),
        ({"quantity": 11, "ttl_seconds": 60}, errors.SoldOutError),
        ({"quantity": 1, "ttl_seconds": 0}, errors.InvalidInputError),
        ({"quantity": 1, "ttl_seconds": 3_601}, errors.InvalidInputError),
    ]:
        with pytest.raises(error):
            ledger.reserve(good, "own", channel="shop", idempotency_key=f"k{kwargs}", **kwargs)
    with pytest.raises(errors.ChannelNotFoundError):
        ledger.reserve(
            good, "own", channel="nobody", quantity=1, ttl_seconds=60, idempotency_key="n"
        )
    hold = ledger.reserve(
        good, "own", channel="shop", quantity=2, ttl_seconds=60, idempotency_key="ok"
    )
    with pytest.raises(errors.InvalidInputError):  # more than the hold
        ledger.commit_hold(
            good, "own", hold["hold_id"], buyer="x", quantity=3, unit_price=EUR, idempotency_key="p"
        )
    with pytest.raises(errors.HoldNotFoundError):
        ledger.commit_hold(
            good,
            "own",
            "00000000-0000-4000-8000-000000000000",
            buyer="x",
            quantity=1,
            unit_price=EUR,
            idempotency_key="p2",
        )
    ledger.sell(
        good, "own", buyer="x", channel="shop", quantity=5, unit_price=EUR, idempotency_key="s1"
    )
    stored = ledger.event_store.recorder.max_notification_id()
    assert (stored or 0) > (before or 0)
    with pytest.raises(errors.BuyerLimitError):  # the tier's per-buyer limit still holds
        ledger.commit_hold(
            good,
            "own",
            hold["hold_id"],
            buyer="x",
            quantity=1,
            unit_price=EUR,
            idempotency_key="p3",
        )
    assert ledger.event_store.recorder.max_notification_id() == stored  # nothing written
    assert counts(ledger, good) == (5, 2, 3)  # the hold is still there, untouched


def test_commit_racing_expiry_resolves_the_hold_once(shop: Any) -> None:
    """Many payments and sweepers race for holds at their expiry instant:
    each hold ends exactly one way and the counts balance."""
    ledger, good, clock = shop
    holds = [
        ledger.reserve(
            good, "own", channel="shop", quantity=1, ttl_seconds=5, idempotency_key=f"h{i}"
        )["hold_id"]
        for i in range(5)
    ]
    clock.advance(5)  # exactly at expiry: a commit now is late
    outcomes: list[str] = []

    def pay(i: int) -> None:
        answer = ledger.commit_hold(
            good,
            "own",
            holds[i],
            buyer=f"b{i}",
            quantity=1,
            unit_price=EUR,
            idempotency_key=f"pay{i}",
        )
        outcomes.append(answer["outcome"])

    def sweeper() -> None:
        sweep(ledger, lambda now: [(good, "own")])

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(5)]
    threads += [threading.Thread(target=sweeper) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["sold-late"] * 5  # stock remained for every late payment
    stock = ledger.stock(good, "own")
    assert {h: stock.holds[h]["state"] for h in holds} == dict.fromkeys(holds, "expired")
    assert counts(ledger, good) == (5, 0, 5)
    audit(ledger)
