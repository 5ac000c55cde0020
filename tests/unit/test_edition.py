""" "No. k of N" (issue 14 item 4): a unit's edition, derived from its tier
-- by the domain for the answers and views, and independently by the
verifier -- and read back typed from an answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.domain.edition import LIFETIME_CAP, QUOTA, edition, edition_size
from ledger.domain.good import Good, GoodSpec
from ledger.domain.stock import TierStock
from ledger.service.answers import Edition, Resold, Sold, SoldUnit
from ledger.verify import facts
from tests.strategies import good_spec
from tests.unit.test_answers import SALE

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _good(policy: str, tier: dict[str, Any]) -> Good:
    return Good.mint(GoodSpec.from_json(good_spec(policy=policy, tiers=[tier])), NOW)


@pytest.mark.parametrize(
    ("policy", "tier", "size"),
    [
        ("absolute", {"name": "own", "quota": 500}, (500, QUOTA)),
        ("absolute", {"name": "own", "quota": 7, "lifetime_cap": 7}, (7, QUOTA)),
        ("restockable", {"name": "own", "quota": 100, "lifetime_cap": 500}, (500, LIFETIME_CAP)),
        # No cap declared: the quota is the cap (restocks can add nothing), never "open".
        ("restockable", {"name": "own", "quota": 100}, (100, LIFETIME_CAP)),
    ],
)
def test_the_edition_size_is_the_quota_or_the_lifetime_cap(
    policy: str, tier: dict[str, Any], size: tuple[int, str]
) -> None:
    good = _good(policy, tier)
    assert good.edition_size("own") == size
    stock = TierStock.open(good, "own", NOW)
    # The stock.opened says the same: what the views and the verifier read.
    assert edition_size(stock.lifetime_cap, stock.restockable) == size
    assert edition(37, size) == {"serial": 37, "of": size[0], "basis": size[1]}


def test_a_restock_raises_the_supply_never_the_edition_size() -> None:
    good = _good("restockable", {"name": "own", "quota": 2, "lifetime_cap": 10})
    stock = TierStock.open(good, "own", NOW)
    stock.restock(5, NOW + timedelta(seconds=1))
    assert stock.supply == 7
    assert edition_size(stock.lifetime_cap, stock.restockable) == (10, LIFETIME_CAP)
    assert good.edition_size("own") == (10, LIFETIME_CAP)


@pytest.mark.parametrize(("cap", "restockable"), [(500, False), (500, True), (1, True)])
def test_the_verifier_derives_the_same_edition(cap: int, restockable: bool) -> None:
    """Written apart (the verifier imports no domain), the two agree."""
    stock = facts.Stock(
        good_id="g",
        tier="own",
        supply=cap,
        lifetime_cap=cap,
        restockable=restockable,
        transferable=True,
        per_buyer_limit=None,
        opens=None,
        closes=None,
    )
    assert facts.edition(3, stock) == edition(3, edition_size(cap, restockable))


def test_an_answer_reads_its_units_editions_typed() -> None:
    raw = SALE | {
        "units": [
            {
                "unit_id": "u-1",
                "serial": 1,
                "code_ref": "r-1",
                "edition": {"serial": 1, "of": 500, "basis": "quota"},
            }
        ]
    }
    sale = Sold.read(raw)
    assert sale.units == (SoldUnit("u-1", 1, "r-1", Edition(1, 500, "quota")),)
    assert sale == raw
    # An answer recorded before editions: read as it was, the edition unknown.
    assert Sold.read(SALE).units[0].edition is None


def test_a_resale_reads_its_edition_typed() -> None:
    raw = {
        "resale_id": "r-1",
        "unit_id": "u-1",
        "good_id": "g-1",
        "tier": "own",
        "serial": 3,
        "edition": {"serial": 3, "of": 50, "basis": "lifetime-cap"},
        "seller": "b1",
        "buyer": "b2",
        "channel": "shop",
        "price": {"amount": 500, "currency": "EUR"},
        "split": [{"recipient": "alice", "role": "creator", "amount": 500}],
        "resold_at": "2026-12-07T19:00:00.000000Z",
    }
    assert Resold.read(raw).edition == Edition(3, 50, "lifetime-cap")
    assert Resold.read({k: v for k, v in raw.items() if k != "edition"}).edition is None
