"""Unlock tiers on both backends: a tier that opens once another has sold N
units, or at a time; refused before with a problem saying what opens it;
the opening recorded once, by the first sale or hold that finds it due;
in the views; verified; and over HTTP."""

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
from tests.audit import audit
from tests.integration import test_api
from tests.integration.test_api import PROBLEM, Api, spec
from tests.strategies import good_spec

api = test_api.api  # (the in-process API fixture, with a key per role)
EUR = Money(100, "EUR")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TIERS = [
    {"name": "early", "quota": 3},
    {"name": "late", "quota": 20, "unlock": {"tier": "early", "sold": 2}},
    {"name": "night", "quota": 5, "unlock": {"at": "2026-12-01T20:00:00.000000Z"}},
]


@pytest.fixture
def shop(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str, list[datetime]]]:
    now = [T0]
    with Ledger(store_url, clock=lambda: now[0]) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        minted = ledger.mint(good_spec(tiers=TIERS), idempotency_key="m")
        yield ledger, str(minted["good_id"]), now


def sell(ledger: Ledger, good: str, tier: str, key: str, quantity: int = 1) -> Any:
    return ledger.sell(
        good,
        tier,
        buyer=f"b-{key}",
        channel="shop",
        quantity=quantity,
        unit_price=EUR,
        idempotency_key=key,
    )


def test_a_tier_opens_once_another_has_sold_its_units(shop: Any) -> None:
    ledger, good, _ = shop
    with pytest.raises(errors.TierLockedError, match=r"has sold 2 unit.*it has sold 0"):
        sell(ledger, good, "late", "l0")
    with pytest.raises(errors.TierLockedError):
        ledger.reserve(
            good, "late", channel="shop", quantity=1, ttl_seconds=60, idempotency_key="h"
        )
    first = sell(ledger, good, "early", "e1")
    ledger.refund(first["units"][0]["unit_id"], reason="changed mind", idempotency_key="r")
    sell(ledger, good, "early", "e2")  # two sold, one refunded: it counts as two
    assert ledger.stock(good, "late").locked
    sell(ledger, good, "late", "l1")
    stock = ledger.stock(good, "late")
    assert not stock.locked
    sell(ledger, good, "late", "l2")
    events = [e.topic for e in ledger.event_store.recorder.select_events(stock.id)]
    assert events.count("stock.unlocked") == 1
    assert events.index("stock.unlocked") == events.index("stock.sold") - 1
    views = audit(ledger)
    late = next(t for t in views.stock(good) if t["tier"] == "late")
    assert late["sale_state"] == "on-sale"
    assert late["unlock"] == {"tier": "early", "sold": 2}
    assert late["unlocked_at"] == "2026-12-01T12:00:00.000000Z"
    night = next(t for t in views.stock(good) if t["tier"] == "night")
    assert (night["sale_state"], night["unlocked_at"]) == ("locked", None)


def test_a_tier_opens_at_its_time_by_its_first_hold(shop: Any) -> None:
    ledger, good, now = shop
    with pytest.raises(errors.TierLockedError, match="opens at 2026-12-01T20:00:00"):
        sell(ledger, good, "night", "n0")
    now[0] = T0 + timedelta(hours=8)
    hold = ledger.reserve(
        good, "night", channel="shop", quantity=2, ttl_seconds=60, idempotency_key="h"
    )
    ledger.commit_hold(
        good, "night", hold["hold_id"], buyer="ann", quantity=2, unit_price=EUR,
        idempotency_key="c",
    )  # fmt: skip
    assert ledger.stock(good, "night").unlocked_at == "2026-12-01T20:00:00.000000Z"
    audit(ledger)


def test_concurrent_buyers_of_both_tiers_never_buy_the_locked_one_early(shop: Any) -> None:
    """Each sale of the locked tier comes after its opening, and the opening
    after the other tier's second sale, whichever thread decided it."""
    ledger, good, _ = shop
    outcomes: list[str] = []

    def buy(tier: str, i: int) -> None:
        try:
            sell(ledger, good, tier, f"{tier}{i}")
            outcomes.append(tier)
        except errors.TierLockedError:
            outcomes.append("locked")
        except errors.SoldOutError:
            outcomes.append("sold-out")

    threads = [threading.Thread(target=buy, args=("late", i)) for i in range(8)]
    threads[3:3] = [threading.Thread(target=buy, args=("early", i)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("early") == 3
    audit(ledger)  # the verifier: no sale of "late" before its unlock, nor that before 2 sold


# -- over HTTP -----------------------------------------------------------------
def test_http_a_locked_tier_is_a_problem_naming_what_opens_it(api: Api) -> None:
    assert api.post("admin", "/channels", {"channel": "shop", "name": "S", "fee_bps": 0})
    later = {"name": "night", "quota": 5, "unlock": {"at": "2099-01-01T00:00:00.000000Z"}}
    good = api.post("alice", "/goods", {"spec": spec(title="drops", tiers=[*TIERS[:2], later])})
    assert good.status_code == 201, good.text
    g = good.json()["good_id"]
    body = {"buyer": "b", "channel": "shop", "unit_price": {"amount": 1, "currency": "EUR"}}
    refused = api.post("shop", f"/goods/{g}/tiers/late/sales", body)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"] == PROBLEM + "tier-locked"
    assert problem["unlock"] == {"tier": "early", "sold": 2}
    assert "once tier 'early' has sold 2 unit(s) (it has sold 0)" in problem["detail"]
    held = api.post(
        "shop",
        f"/goods/{g}/tiers/night/holds",
        {"channel": "shop", "quantity": 1, "ttl_seconds": 9},
    )
    assert held.json()["type"] == PROBLEM + "tier-locked"
    bad = spec(title="bad", tiers=[{"name": "a", "quota": 1, "unlock": {"tier": "a", "sold": 1}}])
    invalid = api.post("alice", "/goods", {"spec": bad})
    assert invalid.status_code == 422
    assert invalid.json()["field"] == "tiers[0].unlock.tier"
    api.caught_up()
    tiers = {t["tier"]: t for t in api.get("auditor", f"/goods/{g}/stock").json()["tiers"]}
    assert tiers["late"]["sale_state"] == "locked"
    assert tiers["early"]["unlock"] is None
