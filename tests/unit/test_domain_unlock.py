"""Unlock tiers, decided by the domain alone: the definition's member, what
opens a tier and what a locked tier refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.domain import unlock
from ledger.domain.errors import InvalidInputError, PausedError, TierLockedError
from ledger.domain.good import Good, GoodSpec
from ledger.domain.stock import TierStock
from tests.strategies import good_spec

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EUR = {"amount": 100, "currency": "EUR"}
AFTER = {"tier": "early", "sold": 2}
AT = {"at": "2026-12-01T13:00:00Z"}


def tiers(late_unlock: Any) -> list[dict[str, Any]]:
    return [{"name": "early", "quota": 3}, {"name": "late", "quota": 5, "unlock": late_unlock}]


def late_stock(late_unlock: Any) -> TierStock:
    good = Good.mint(GoodSpec.from_json(good_spec(tiers=tiers(late_unlock))), NOW)
    return TierStock.open(good, "late", NOW)


def test_the_member_is_absent_from_a_definition_without_it() -> None:
    """Older goods keep their bytes, so their fingerprint."""
    plain = GoodSpec.from_json(good_spec())
    assert all("unlock" not in t for t in plain.to_json()["tiers"])
    with_null = good_spec()
    with_null["tiers"][0]["unlock"] = None
    assert Good.mint(GoodSpec.from_json(with_null), NOW).fingerprint == (
        Good.mint(plain, NOW).fingerprint
    )
    locked = GoodSpec.from_json(good_spec(tiers=tiers(AFTER)))
    assert locked.to_json()["tiers"][1]["unlock"] == AFTER
    assert GoodSpec.from_json(good_spec(tiers=tiers(AT))).to_json()["tiers"][1]["unlock"] == {
        "at": "2026-12-01T13:00:00.000000Z"
    }


@pytest.mark.parametrize(
    ("late_unlock", "field"),
    [
        ({"tier": "late", "sold": 1}, "tiers[1].unlock.tier"),  # itself
        ({"tier": "nope", "sold": 1}, "tiers[1].unlock.tier"),
        ({"tier": "early", "sold": 4}, "tiers[1].unlock.sold"),  # more than early can sell
        ({"tier": "early", "sold": 0}, "tiers[1].unlock.sold"),
        ({"tier": "early"}, "tiers[1].unlock"),
        ({"at": "2026-12-01T13:00:00Z", "tier": "early"}, "tiers[1].unlock"),
        ({"at": "tomorrow"}, "tiers[1].unlock.at"),
        ("soon", "tiers[1].unlock"),
    ],
)
def test_a_bad_unlock_is_refused_naming_its_field(late_unlock: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        GoodSpec.from_json(good_spec(tiers=tiers(late_unlock)))
    assert caught.value.field == field


def test_tiers_must_not_wait_on_each_other() -> None:
    spec = good_spec(
        tiers=[
            {"name": "a", "quota": 3, "unlock": {"tier": "c", "sold": 1}},
            {"name": "b", "quota": 3, "unlock": {"tier": "a", "sold": 1}},
            {"name": "c", "quota": 3, "unlock": {"tier": "b", "sold": 1}},
        ]
    )
    with pytest.raises(InvalidInputError, match="must not wait on each other"):
        GoodSpec.from_json(spec)


def test_a_locked_tier_refuses_sales_and_holds_saying_what_opens_it() -> None:
    stock = late_stock(AFTER)
    assert stock.locked
    with pytest.raises(TierLockedError, match="once tier 'early' has sold 2 unit") as caught:
        stock.check_sale(1, NOW, unit_price=EUR)
    assert caught.value.problem_extra == {"unlock": AFTER}
    with pytest.raises(TierLockedError):
        stock.reserve(hold_id="h", channel="shop", quantity=1, ttl_seconds=60, now=NOW)
    with pytest.raises(TierLockedError, match=r"\(it has sold 1\)"):
        stock.open_if_due(NOW, 1)
    assert stock.locked
    stock.open_if_due(NOW, 2)
    assert not stock.locked
    assert stock.unlocked_at == "2026-12-01T12:00:00.000000Z"
    stock.check_sale(1, NOW, unit_price=EUR)
    version = stock.version
    stock.open_if_due(NOW, 0)  # once open, open for good: nothing more is recorded
    assert stock.version == version


def test_a_timed_unlock_opens_at_its_time() -> None:
    stock = late_stock(AT)
    with pytest.raises(TierLockedError, match=r"opens at 2026-12-01T13:00:00\.000000Z"):
        stock.open_if_due(NOW + timedelta(minutes=59), None)
    stock.open_if_due(NOW + timedelta(hours=1), None)
    assert not stock.locked


def test_a_paused_locked_tier_does_not_open() -> None:
    stock = late_stock(AT)
    stock.pause(scope="good", reason="hold on", now=NOW)
    with pytest.raises(PausedError):
        stock.open_if_due(NOW + timedelta(hours=2), None)
    assert stock.locked


def test_units_sold_count_every_sale_refunds_not_subtracted() -> None:
    good = Good.mint(GoodSpec.from_json(good_spec(tiers=tiers(AFTER))), NOW)
    early = TierStock.open(good, "early", NOW)
    serials = early.sell(
        sale_id="s", buyer="ann", channel="shop", quantity=2, unit_price=EUR, split=[], now=NOW
    )
    early.take_back(serial=serials[0], refund_id="r", now=NOW)
    assert (early.units_sold, early.issued) == (2, 1)


def test_due_and_describe() -> None:
    assert unlock.due({"at": "2026-12-01T12:00:00.000000Z"}, NOW, None)
    assert not unlock.due({"tier": "a", "sold": 3}, NOW, None)
    assert unlock.describe({"tier": "a", "sold": 3}, 1) == (
        "it opens once tier 'a' has sold 3 unit(s) (it has sold 1)"
    )
