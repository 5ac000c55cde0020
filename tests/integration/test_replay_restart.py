"""A retried command is answered from its record by a process that did not
answer it first (a restart, or another server): for every command whose new
aggregate or entry is named by the command's id, as for the rest."""

from __future__ import annotations

import pytest

from ledger.domain.money import Money
from ledger.service import Ledger, Replayed
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

EUR = Money(1_000, "EUR")


@pytest.mark.parametrize("resolve", [None, "commit", "release"])
def test_a_hold_is_replayed_by_a_fresh_process(store_url: DatabaseURL, resolve: str | None) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 10}]), idempotency_key="mint")[
            "good_id"
        ]
        first = ledger.reserve(
            good, "own", channel="shop", quantity=2, ttl_seconds=600, idempotency_key="cart-1"
        )
        if resolve == "commit":
            ledger.commit_hold(
                good,
                "own",
                first["hold_id"],
                buyer="b1",
                quantity=2,
                unit_price=EUR,
                idempotency_key="pay-1",
            )
        elif resolve == "release":
            ledger.release_hold(good, "own", first["hold_id"], idempotency_key="drop-1")
    with Ledger(store_url) as ledger:
        again = ledger.reserve(
            good, "own", channel="shop", quantity=2, ttl_seconds=600, idempotency_key="cart-1"
        )
        assert isinstance(again, Replayed)
        assert again == first
        assert ledger.stock(good, "own").holds.keys() == {first["hold_id"]}


def test_a_waitlist_entry_is_replayed_by_a_fresh_process(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(
            good_spec(policy="restockable", tiers=[{"name": "own", "quota": 1, "lifetime_cap": 5}]),
            idempotency_key="mint",
        )["good_id"]
        ledger.sell(
            good,
            "own",
            buyer="b0",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="s0",
        )
        first = ledger.join_waitlist(
            good, "own", buyer="b1", channel="shop", quantity=1, idempotency_key="wait-1"
        )
    with Ledger(store_url) as ledger:
        again = ledger.join_waitlist(
            good, "own", buyer="b1", channel="shop", quantity=1, idempotency_key="wait-1"
        )
        assert isinstance(again, Replayed)
        assert again == first
