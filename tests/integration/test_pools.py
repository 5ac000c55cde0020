"""Channels' pools on both backends: stock set aside for a channel, sold
from first, overflowing only if allowed, returned and moved; pools, holds
and sales never exceed the quota; the auditor and the views agree."""

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

EUR = Money(1_000, "EUR")


@pytest.fixture
def shop(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str]]:
    with Ledger(store_url) as ledger:
        for channel in ("shop", "live", "room2"):
            ledger.register_channel(channel, channel, 500, idempotency_key=f"ch-{channel}")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 20}]), idempotency_key="mint")[
            "good_id"
        ]
        yield ledger, str(good)


def sell(ledger: Ledger, good: str, channel: str, quantity: int, key: str) -> dict[str, Any]:
    return ledger.sell(
        good,
        "own",
        buyer=f"b-{key}",
        channel=channel,
        quantity=quantity,
        unit_price=EUR,
        idempotency_key=key,
    )


def state(ledger: Ledger, good: str) -> tuple[int, int, dict[str, int]]:
    stock = ledger.stock(good, "own")
    return stock.issued, stock.available, {c: p["free"] for c, p in stock.pools.items()}


def test_a_room_sells_its_pool_and_gives_the_rest_back(shop: Any) -> None:
    ledger, good = shop
    ledger.allot_pool(good, "own", channel="live", quantity=8, idempotency_key="a")
    assert state(ledger, good) == (0, 12, {"live": 8})
    with pytest.raises(errors.SoldOutError):  # the room's units are nobody else's
        sell(ledger, good, "shop", 13, "s-too-many")
    sell(ledger, good, "live", 5, "l1")
    assert state(ledger, good) == (5, 12, {"live": 3})
    with pytest.raises(errors.SoldOutError):  # no overflow: the pool is all it has
        sell(ledger, good, "live", 4, "l2")
    back = ledger.return_pool(good, "own", channel="live", quantity=3, idempotency_key="r")
    assert (back["free"], back["shared_available"]) == (0, 15)
    with pytest.raises(errors.PoolShortError):
        ledger.return_pool(good, "own", channel="live", quantity=1, idempotency_key="r2")
    views = audit(ledger)
    pool = views.pools(good)[0]
    assert (pool["channel"], pool["allotted"], pool["sold"], pool["returned"], pool["free"]) == (
        "live",
        8,
        5,
        3,
        0,
    )
    own = views.stock(good)[0]
    assert (own["pooled"], own["available"], own["issued"]) == (0, 15, 5)


def test_overflow_sells_on_from_the_shared_stock(shop: Any) -> None:
    ledger, good = shop
    ledger.allot_pool(good, "own", channel="live", quantity=2, overflow=True, idempotency_key="a")
    sold = sell(ledger, good, "live", 5, "l1")  # 2 from the pool, 3 from the shared stock
    assert len(sold["units"]) == 5
    assert state(ledger, good) == (5, 15, {"live": 0})
    audit(ledger)


def test_moving_units_between_rooms(shop: Any) -> None:
    ledger, good = shop
    ledger.allot_pool(good, "own", channel="live", quantity=6, idempotency_key="a")
    moved = ledger.move_pool(
        good, "own", from_channel="live", to_channel="room2", quantity=4, idempotency_key="m"
    )
    assert (moved["from"]["free"], moved["to"]["free"]) == (2, 4)
    assert state(ledger, good) == (0, 14, {"live": 2, "room2": 4})
    with pytest.raises(errors.PoolShortError):
        ledger.move_pool(
            good, "own", from_channel="live", to_channel="room2", quantity=3, idempotency_key="m2"
        )
    with pytest.raises(errors.InvalidInputError):
        ledger.move_pool(
            good, "own", from_channel="live", to_channel="live", quantity=1, idempotency_key="m3"
        )
    sell(ledger, good, "room2", 4, "r1")
    assert state(ledger, good) == (4, 14, {"live": 2, "room2": 0})
    audit(ledger)


def test_pools_holds_and_sales_never_exceed_the_quota(shop: Any) -> None:
    ledger, good = shop
    ledger.allot_pool(good, "own", channel="live", quantity=10, idempotency_key="a")
    hold = ledger.reserve(
        good, "own", channel="live", quantity=6, ttl_seconds=60, idempotency_key="h"
    )
    with pytest.raises(errors.SoldOutError):  # 10 pooled + 6 held + 5 > 20
        ledger.allot_pool(good, "own", channel="shop", quantity=5, idempotency_key="a2")
    with pytest.raises(errors.SoldOutError):
        ledger.reserve(
            good, "own", channel="shop", quantity=5, ttl_seconds=60, idempotency_key="h2"
        )
    # A hold's units are the shared stock's: committing it leaves the pool alone.
    ledger.commit_hold(
        good, "own", hold["hold_id"], buyer="ann", quantity=6, unit_price=EUR, idempotency_key="pay"
    )
    assert state(ledger, good) == (6, 4, {"live": 10})
    unit = sell(ledger, good, "live", 1, "l1")["units"][0]["unit_id"]
    assert state(ledger, good) == (7, 4, {"live": 9})
    ledger.refund(unit, reason="r", idempotency_key="f")  # a refunded unit goes to the shared stock
    assert state(ledger, good) == (6, 5, {"live": 9})
    with pytest.raises(errors.ChannelNotFoundError):
        ledger.allot_pool(good, "own", channel="ghost", quantity=1, idempotency_key="g")
    audit(ledger)
