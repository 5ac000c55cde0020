"""Price rules by sell-through on both backends: the creator sets a tier's
schedule; each sale (a hold's payment included) pays the price in force at
its decision or is refused with it; the views show it; verified; over HTTP."""

from __future__ import annotations

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
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


STEPS = [{"price": eur(100)}, {"after_sold": 3, "price": eur(150)}]


@pytest.fixture
def shop(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str, list[datetime]]]:
    now = [T0]
    with Ledger(store_url, clock=lambda: now[0]) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        minted = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 10}]), idempotency_key="m")
        yield ledger, str(minted["good_id"]), now


def sell(ledger: Ledger, good: str, key: str, amount: int, quantity: int = 1) -> Any:
    return ledger.sell(
        good,
        "own",
        buyer=f"b-{key}",
        channel="shop",
        quantity=quantity,
        unit_price=Money(amount, "EUR"),
        idempotency_key=key,
    )


def test_sales_pay_the_price_their_schedule_has_in_force(shop: Any) -> None:
    ledger, good, now = shop
    answer = ledger.set_prices(good, "own", steps=STEPS, idempotency_key="p")
    assert answer["price_now"] == eur(100)
    with pytest.raises(errors.PriceRuleError, match="sells at 100 EUR"):
        sell(ledger, good, "x", 90)
    hold = ledger.reserve(
        good, "own", channel="shop", quantity=1, ttl_seconds=600, idempotency_key="h"
    )
    sell(ledger, good, "a", 100, quantity=2)
    first = sell(ledger, good, "b", 100)  # 2 sold before it
    ledger.refund(first["units"][0]["unit_id"], reason="r", idempotency_key="r")
    with pytest.raises(errors.PriceRuleError, match="sells at 150 EUR"):
        sell(ledger, good, "y", 100)  # 3 sold (a refund does not take one back)
    # The hold pays the price in force when it is paid, not when it was made.
    with pytest.raises(errors.PriceRuleError):
        ledger.commit_hold(
            good, "own", hold["hold_id"], buyer="h", quantity=1, unit_price=Money(100, "EUR"),
            idempotency_key="c1",
        )  # fmt: skip
    ledger.commit_hold(
        good, "own", hold["hold_id"], buyer="h", quantity=1, unit_price=Money(150, "EUR"),
        idempotency_key="c2",
    )  # fmt: skip
    # A schedule by time, then none.
    later = "2026-12-01T13:00:00.000000Z"
    ledger.set_prices(
        good, "own", steps=[{"price": eur(150)}, {"at": later, "price": eur(120)}],
        idempotency_key="p2",
    )  # fmt: skip
    sell(ledger, good, "c", 150)
    now[0] = T0 + timedelta(hours=1)
    sell(ledger, good, "d", 120)
    ledger.set_prices(good, "own", steps=None, idempotency_key="p3")
    sell(ledger, good, "e", 1)
    views = audit(ledger)
    own = views.stock(good)[0]
    assert own["prices"] is None
    assert own["price_now"] is None


def test_a_bad_schedule_changes_nothing(shop: Any) -> None:
    ledger, good, _ = shop
    with pytest.raises(errors.InvalidInputError):
        ledger.set_prices(
            good, "own", steps=[{"price": {"amount": 1, "currency": "USD"}}], idempotency_key="p"
        )
    assert ledger.stock(good, "own").prices is None


# -- over HTTP -----------------------------------------------------------------
def test_http_a_sale_at_another_price_is_refused_with_the_price_in_force(api: Api) -> None:
    assert api.post("admin", "/channels", {"channel": "shop", "name": "S", "fee_bps": 0})
    good = api.post(
        "alice", "/goods", {"spec": spec(title="steps", tiers=[{"name": "own", "quota": 9}])}
    )
    g = good.json()["good_id"]
    path = f"/goods/{g}/tiers/own/prices"
    assert api.post("mallory", path, {"steps": STEPS}).status_code == 403
    assert api.post("shop", path, {"steps": STEPS}).status_code == 403
    set_ = api.post("alice", path, {"steps": STEPS})
    assert set_.status_code == 201, set_.text
    assert set_.json()["price_now"] == eur(100)
    body = {"buyer": "b", "channel": "shop", "quantity": 3, "unit_price": eur(100)}
    assert api.post("shop", f"/goods/{g}/tiers/own/sales", body).status_code == 201
    refused = api.post("shop", f"/goods/{g}/tiers/own/sales", body)
    assert refused.status_code == 409
    assert refused.json()["type"] == PROBLEM + "price-rule"
    assert refused.json()["price"] == eur(150)
    bad = api.post("alice", path, {"steps": [{"price": eur(1), "after_sold": 2}]})
    assert bad.status_code == 422
    api.caught_up()
    own = api.get("auditor", f"/goods/{g}/stock").json()["tiers"][0]
    assert own["prices"] == STEPS
    assert own["price_now"] == eur(150)
