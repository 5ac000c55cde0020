"""Pause, resume and delist on both backends: through the service, over
HTTP (roles, idempotency, problems), in the views, and verified."""

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


@pytest.fixture
def shop(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str, list[datetime]]]:
    now = [T0]
    with Ledger(store_url, clock=lambda: now[0]) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        tiers = [{"name": "own", "quota": 10, "lifetime_cap": 50}, {"name": "view", "quota": 10}]
        minted = ledger.mint(good_spec(tiers=tiers, policy="restockable"), idempotency_key="m")
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


def test_pause_resume_and_delist_a_tier_and_a_good(shop: Any) -> None:
    ledger, good, now = shop
    sold = sell(ledger, good, "own", "s1")
    hold = ledger.reserve(
        good, "own", channel="shop", quantity=1, ttl_seconds=600, idempotency_key="h1"
    )
    paused = ledger.pause(good, "own", reason="wrong price shown", idempotency_key="p1")
    assert paused["tiers"] == [{"tier": "own", "sale_state": "paused"}]
    now[0] += timedelta(seconds=1)
    with pytest.raises(errors.PausedError, match="wrong price shown"):
        sell(ledger, good, "own", "s2")
    with pytest.raises(errors.PausedError):
        ledger.reserve(good, "own", channel="shop", quantity=1, ttl_seconds=60, idempotency_key="h")
    with pytest.raises(errors.PausedError):
        ledger.restock(good, "own", 5, idempotency_key="r1")
    with pytest.raises(errors.PausedError):
        ledger.commit_hold(
            good, "own", hold["hold_id"], buyer="bob", quantity=1, unit_price=EUR,
            idempotency_key="c1",
        )  # fmt: skip
    sell(ledger, good, "view", "v1")  # the other tier sells on
    # The same key and reason replay; a second pause is refused.
    again = ledger.pause(good, "own", reason="wrong price shown", idempotency_key="p1")
    assert again.replayed
    assert again == paused
    with pytest.raises(errors.ListingStateError):
        ledger.pause(good, "own", reason="twice", idempotency_key="p2")
    ledger.resume(good, "own", reason="price fixed", idempotency_key="u1")
    ledger.commit_hold(
        good, "own", hold["hold_id"], buyer="bob", quantity=1, unit_price=EUR, idempotency_key="c1"
    )
    # The good's pause stops every tier, and its resume only its own pause.
    ledger.pause(good, "view", reason="view checked", idempotency_key="p3")
    whole = ledger.pause(good, reason="recall", idempotency_key="p4")
    assert whole["scope"] == "good"
    assert whole["tier"] is None
    assert {t["sale_state"] for t in whole["tiers"]} == {"paused"}
    ledger.resume(good, reason="recall over", idempotency_key="u2")
    sell(ledger, good, "own", "s3")
    with pytest.raises(errors.PausedError, match="tier 'view' is paused"):
        sell(ledger, good, "view", "v2")
    # Delisting is final; units sold stay valid and may be resold and refunded.
    ledger.delist(good, reason="discontinued", idempotency_key="d1")
    with pytest.raises(errors.DelistedError, match="delisting is final"):
        sell(ledger, good, "own", "s4")
    with pytest.raises(errors.DelistedError):
        ledger.resume(good, "view", reason="no", idempotency_key="u3")
    unit = sold["units"][0]["unit_id"]
    ledger.resell(unit, seller="b-s1", buyer="carl", channel="shop", price=EUR, idempotency_key="x")
    views = audit(ledger)
    tiers = {t["tier"]: t for t in views.stock(good)}
    assert tiers["own"]["sale_state"] == tiers["view"]["sale_state"] == "delisted"
    assert tiers["own"]["delisted"] == {
        "scope": "good",
        "reason": "discontinued",
        "since": tiers["own"]["delisted"]["since"],
    }
    assert tiers["view"]["paused"] == {
        "tier": {"reason": "view checked", "since": "2026-12-01T12:00:01.000000Z"}
    }


def test_a_good_pause_skips_tiers_already_delisted(shop: Any) -> None:
    ledger, good, _ = shop
    ledger.delist(good, "view", reason="retired", idempotency_key="d")
    paused = ledger.pause(good, reason="inventory", idempotency_key="p")
    assert paused["tiers"] == [{"tier": "own", "sale_state": "paused"}]
    ledger.resume(good, reason="done", idempotency_key="u")
    ledger.delist(good, reason="gone", idempotency_key="d2")
    with pytest.raises(errors.DelistedError):
        ledger.pause(good, reason="again", idempotency_key="p2")
    audit(ledger)


def test_a_pause_racing_sales_stops_them_on_the_stocks_version(shop: Any) -> None:
    """Sales decided after the pause committed are refused, whatever thread:
    each sale either precedes the pause in the stock's history or is refused."""
    ledger, good, _ = shop
    outcomes: list[str] = []

    def buy(i: int) -> None:
        try:
            sell(ledger, good, "own", f"k{i}")
            outcomes.append("sold")
        except errors.PausedError:
            outcomes.append("paused")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(8)]
    for t in threads[:4]:
        t.start()
    ledger.pause(good, "own", reason="stop", idempotency_key="p")
    for t in threads[4:]:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 8
    assert outcomes.count("paused") >= 4
    views = audit(ledger)
    own = next(t for t in views.stock(good) if t["tier"] == "own")
    assert own["issued"] == outcomes.count("sold")


# -- over HTTP -----------------------------------------------------------------
def test_http_pause_problem_says_paused_why_and_since_when(api: Api) -> None:
    shop = {"channel": "shop", "name": "Shop", "fee_bps": 0}
    assert api.post("admin", "/channels", shop).status_code == 201
    good = api.post(
        "alice", "/goods", {"spec": spec(title="listing", tiers=[{"name": "own", "quota": 5}])}
    ).json()["good_id"]
    refused = api.post("mallory", f"/goods/{good}/tiers/own/pause", {"reason": "not mine"})
    assert refused.status_code == 403
    paused = api.post("alice", f"/goods/{good}/tiers/own/pause", {"reason": "typo in title"})
    assert paused.status_code == 201, paused.text
    body = {"buyer": "b", "channel": "shop", "unit_price": {"amount": 1, "currency": "EUR"}}
    sale = api.post("shop", f"/goods/{good}/tiers/own/sales", body)
    assert sale.status_code == 409
    problem = sale.json()
    assert problem["type"] == PROBLEM + "paused"
    assert problem["paused"] == {
        "scope": "tier",
        "reason": "typo in title",
        "since": paused.json()["at"],
    }
    assert "typo in title" in problem["detail"]
    twice = api.post("admin", f"/goods/{good}/tiers/own/pause", {"reason": "again"})
    assert twice.status_code == 409
    assert twice.json()["type"] == PROBLEM + "listing-state"
    blank = api.post("alice", f"/goods/{good}/pause", {"reason": ""})
    assert blank.status_code == 422
    api.caught_up()
    shown = api.get("auditor", f"/goods/{good}").json()
    assert shown["sale_state"] == "on-sale"  # the good's own state: only its tier is paused
    assert shown["stock"][0]["sale_state"] == "paused"
    assert api.post("alice", f"/goods/{good}/pause", {"reason": "all"}).status_code == 201
    assert api.post("alice", f"/goods/{good}/tiers/own/resume", {"reason": "ok"}).status_code == 201
    api.caught_up()
    shown = api.get("auditor", f"/goods/{good}").json()
    assert shown["sale_state"] == "paused"
    assert shown["paused"]["reason"] == "all"
    delisted = api.post("admin", f"/goods/{good}/delist", {"reason": "withdrawn"})
    assert delisted.status_code == 201
    gone = api.post("shop", f"/goods/{good}/tiers/own/sales", body)
    assert gone.status_code == 409
    assert gone.json()["type"] == PROBLEM + "delisted"
    assert gone.json()["delisted"]["reason"] == "withdrawn"
    api.caught_up()
    stock = api.get("auditor", f"/goods/{good}/stock").json()["tiers"]
    assert stock[0]["sale_state"] == "delisted"
    assert api.get("auditor", f"/goods/{good}").json()["sale_state"] == "delisted"
