"""Waitlists on both backends: join only when sold out, served in order by
a restock's holds, nobody jumps the line; the auditor and views agree."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger.domain import errors
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.audit import audit
from tests.strategies import good_spec

EUR = Money(500, "EUR")


@pytest.fixture
def sold_out(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str]]:
    with Ledger(store_url) as ledger:
        for channel in ("shop", "live"):
            ledger.register_channel(channel, channel, 500, idempotency_key=f"ch-{channel}")
        good = str(
            ledger.mint(
                good_spec(
                    policy="restockable", tiers=[{"name": "own", "quota": 3, "lifetime_cap": 20}]
                ),
                idempotency_key="m",
            )["good_id"]
        )
        ledger.sell(
            good,
            "own",
            buyer="early",
            channel="shop",
            quantity=3,
            unit_price=EUR,
            idempotency_key="s",
        )
        yield ledger, good


def join(ledger: Ledger, good: str, buyer: str, quantity: int, channel: str = "shop") -> Any:
    return ledger.join_waitlist(
        good, "own", buyer=buyer, channel=channel, quantity=quantity, idempotency_key=f"w-{buyer}"
    )


def test_a_restock_offers_holds_in_the_order_buyers_joined(sold_out: Any) -> None:
    ledger, good = sold_out
    places = [join(ledger, good, b, q)["place"] for b, q in (("ann", 2), ("bob", 3), ("cat", 1))]
    assert places == [1, 2, 3]
    restock = ledger.restock(good, "own", 4, idempotency_key="r1")
    # ann's 2 fit; bob's 3 do not (2 left) and nobody jumps ahead of him.
    offered = [o["entry_id"] for o in restock["offered"]]
    ann = ledger.stock(good, "own").waitlist
    assert [ann[e]["buyer"] for e in offered] == ["ann"]
    stock = ledger.stock(good, "own")
    assert (stock.reserved, stock.available) == (2, 2)
    views = audit(ledger)
    assert [(w["buyer"], w["place"]) for w in views.waitlist(good)] == [("bob", 1), ("cat", 2)]
    # The offer is a hold: the channel commits it with the entry's id.
    sale = ledger.commit_hold(
        good, "own", offered[0], buyer="ann", quantity=2, unit_price=EUR, idempotency_key="pay-ann"
    )
    assert sale["outcome"] == "sold"
    restock = ledger.restock(good, "own", 2, idempotency_key="r2")  # 4 free now: bob, then cat
    stock = ledger.stock(good, "own")
    assert [stock.waitlist[o["entry_id"]]["buyer"] for o in restock["offered"]] == ["bob", "cat"]
    assert stock.available == 0
    assert audit(ledger).waitlist(good) == []


def test_joining_is_for_sold_out_restockable_tiers_and_leaving_is_once(sold_out: Any) -> None:
    ledger, good = sold_out
    ledger.restock(good, "own", 1, idempotency_key="r")  # one unit back on sale
    with pytest.raises(errors.WaitlistError, match="buy them rather than wait"):
        join(ledger, good, "ann", 1)
    entry = join(ledger, good, "bob", 2)  # wants more than there is
    left = ledger.leave_waitlist(good, "own", entry["entry_id"], idempotency_key="l")
    assert left["entry_id"] == entry["entry_id"]
    with pytest.raises(errors.WaitlistError, match="not waiting"):
        ledger.leave_waitlist(good, "own", entry["entry_id"], idempotency_key="l2")
    other = join(ledger, good, "cat", 5)
    with pytest.raises(errors.ForbiddenError):
        ledger.leave_waitlist(good, "own", other["entry_id"], idempotency_key="l3", channel="live")
    restock = ledger.restock(good, "own", 1, idempotency_key="r2")
    assert restock["offered"] == []  # cat wants 5, only 2 are free: he keeps his place
    audit(ledger)


def test_an_absolute_edition_has_no_waitlist(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "shop", 0, idempotency_key="ch")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 1}]), idempotency_key="m")[
            "good_id"
        ]
        ledger.sell(
            good, "own", buyer="a", channel="shop", quantity=1, unit_price=EUR, idempotency_key="s"
        )
        with pytest.raises(errors.AbsoluteEditionError):
            ledger.join_waitlist(
                good, "own", buyer="b", channel="shop", quantity=1, idempotency_key="w"
            )
