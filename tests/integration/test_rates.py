"""Per-channel rate rules (anti-bot) on both backends: held with the sale
on the stock's own version, so concurrent buyers never pass the cap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.domain import errors
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from tests.strategies import good_spec

EUR = Money(100, "EUR")


@pytest.fixture
def capped(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str, list[datetime]]]:
    now = [datetime(2026, 11, 22, 12, 0, 5, tzinfo=UTC)]
    with Ledger(store_url, clock=lambda: now[0]) as ledger:
        for channel in ("bots", "shop"):
            ledger.register_channel(channel, channel, 500, idempotency_key=f"ch-{channel}")
        good = str(
            ledger.mint(good_spec(tiers=[{"name": "own", "quota": 100}]), idempotency_key="m")[
                "good_id"
            ]
        )
        ledger.set_rate(good, "own", channel="bots", per_minute=3, idempotency_key="rate")
        yield ledger, good, now


def test_a_channel_sells_at_most_its_rate_a_minute(capped: Any) -> None:
    ledger, good, now = capped

    def sell(channel: str, quantity: int, key: str) -> Any:
        return ledger.sell(
            good,
            "own",
            buyer=f"b-{key}",
            channel=channel,
            quantity=quantity,
            unit_price=EUR,
            idempotency_key=key,
        )

    sell("bots", 2, "a")
    with pytest.raises(errors.RateLimitedError, match="has sold 2 this minute"):
        sell("bots", 2, "b")
    sell("bots", 1, "c")
    sell("shop", 10, "d")  # other channels are not capped
    now[0] += timedelta(minutes=1)
    sell("bots", 3, "e")  # a new minute
    ledger.set_rate(good, "own", channel="bots", per_minute=None, idempotency_key="lift")
    sell("bots", 5, "f")
    assert verify_store(ledger.url).ok


def test_concurrent_buyers_never_pass_the_cap(capped: Any) -> None:
    ledger, good, _ = capped
    outcomes: list[str] = []

    def buy(i: int) -> None:
        try:
            ledger.sell(
                good,
                "own",
                buyer=f"bot{i}",
                channel="bots",
                quantity=1,
                unit_price=EUR,
                idempotency_key=f"k{i}",
            )
            outcomes.append("sold")
        except errors.RateLimitedError:
            outcomes.append("limited")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["limited"] * 9 + ["sold"] * 3
    assert ledger.stock(good, "own").issued == 3
    assert verify_store(ledger.url).ok


def test_bad_rates_are_refused(capped: Any) -> None:
    ledger, good, _ = capped
    for bad in (0, -1, True):
        with pytest.raises(errors.InvalidInputError):
            ledger.set_rate(
                good, "own", channel="bots", per_minute=bad, idempotency_key=f"bad-{bad}"
            )
    with pytest.raises(errors.ChannelNotFoundError):
        ledger.set_rate(good, "own", channel="ghost", per_minute=1, idempotency_key="ghost")
