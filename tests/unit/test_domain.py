"""Domain rules, enforced by the aggregates themselves (no store involved)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.domain import canonical
from ledger.domain.errors import (
    AbsoluteEditionError,
    ChainError,
    InvalidInputError,
    LifetimeCapError,
    NotHolderError,
    NotTransferableError,
    SaleWindowError,
    SelfTradeError,
    SoldOutError,
    UnitNotHeldError,
    VariantRuleError,
)
from ledger.domain.good import Good, GoodSpec
from ledger.domain.money import split
from ledger.domain.stock import TierStock
from ledger.domain.unit import Unit
from tests.strategies import good_spec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PRICE = {"amount": 1000, "currency": "EUR"}


def mint(**overrides: Any) -> Good:
    return Good.mint(GoodSpec.from_json(good_spec(**overrides)), NOW)


def sell(stock: TierStock, quantity: int = 1, buyer: str = "carol") -> list[int]:
    return stock.sell(
        sale_id="s",
        buyer=buyer,
        channel="shop",
        quantity=quantity,
        unit_price=PRICE,
        split=[],
        now=NOW,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"creators": []}, "creators"),
        ({"creators": [{"id": "a", "share_bps": 5000}]}, "creators"),
        (
            {"creators": [{"id": "a", "share_bps": 5000}, {"id": "a", "share_bps": 5000}]},
            "creators",
        ),
        ({"creators": [{"id": "has space", "share_bps": 10000}]}, "creators[0].id"),
        ({"content_digest": "md5:abc"}, "content_digest"),
        ({"kind": "nft"}, "kind"),
        ({"currency": "euro"}, "currency"),
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"name": "own", "quota": 0}]}, "tiers[0].quota"),
        ({"tiers": [{"name": "Own", "quota": 1}]}, "tiers[0].name"),
        ({"tiers": [{"name": "own", "quota": 1}, {"name": "own", "quota": 2}]}, "tiers"),
        ({"tiers": [{"name": "own", "quota": 5, "lifetime_cap": 9}]}, "tiers[0].lifetime_cap"),
        (
            {"tiers": [{"name": "own", "quota": 5, "per_buyer_limit": 6}]},
            "tiers[0].per_buyer_limit",
        ),
        ({"royalty": {"resale_bps": 10001}}, "royalty.resale_bps"),
        ({"metadata": {"price": 1.5}}, "metadata"),
        ({"metadata": {"k": "v" * 5000}}, "metadata"),
        (
            {
                "edition": {
                    "policy": "absolute",
                    "sale_opens_at": "2026-01-02T00:00:00Z",
                    "sale_closes_at": "2026-01-01T00:00:00Z",
                }
            },
            "edition.sale_closes_at",
        ),
        (
            {"edition": {"policy": "absolute", "sale_opens_at": "2026-01-02T00:00:00"}},
            "edition.sale_opens_at",
        ),
        ({"colour": "red"}, "spec"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        GoodSpec.from_json(good_spec() | change)
    assert caught.value.field == field


def test_fingerprint_is_the_hash_of_the_definition_and_names_the_good() -> None:
    good = mint()
    assert good.fingerprint == canonical.sha256_hex(canonical.encode(good.definition))
    assert good.definition["minted_at"] == "2026-11-22T12:00:00.000000Z"
    # The only events a good has never touch its definition.
    assert {e.TYPE for e in (Good.Minted, Good.VariantDerived)} == {
        "good.minted",
        "good.variant-derived",
    }
    assert "definition" not in {f.name for f in dataclasses.fields(Good.VariantDerived)}


def test_an_absolute_edition_can_never_be_restocked() -> None:
    stock = TierStock.open(mint(), "own", NOW)
    with pytest.raises(AbsoluteEditionError):
        stock.restock(1, NOW)


def test_a_restockable_tier_grows_only_to_its_lifetime_cap() -> None:
    good = mint(policy="restockable", tiers=[{"name": "own", "quota": 5, "lifetime_cap": 8}])
    stock = TierStock.open(good, "own", NOW)
    stock.restock(3, NOW)
    assert stock.supply == 8
    with pytest.raises(LifetimeCapError):
        stock.restock(1, NOW)


def test_sales_never_exceed_supply_and_serials_are_dense() -> None:
    stock = TierStock.open(mint(tiers=[{"name": "own", "quota": 3}]), "own", NOW)
    assert sell(stock, 2) == [1, 2]
    with pytest.raises(SoldOutError):
        sell(stock, 2)
    assert sell(stock, 1) == [3]
    assert stock.available == 0


def test_a_returned_serial_is_sold_again_before_new_ones() -> None:
    stock = TierStock.open(mint(tiers=[{"name": "own", "quota": 5}]), "own", NOW)
    sell(stock, 4)
    stock.take_back(serial=3, refund_id="r1", now=NOW)
    stock.take_back(serial=1, refund_id="r2", now=NOW)
    assert stock.issued == 2
    assert sell(stock, 3) == [1, 3, 5]


def test_the_sale_window_is_enforced() -> None:
    opens, closes = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    stock = TierStock.open(
        mint(
            edition={
                "policy": "absolute",
                "sale_opens_at": opens.isoformat(),
                "sale_closes_at": closes.isoformat(),
            }
        ),
        "own",
        NOW,
    )
    with pytest.raises(SaleWindowError, match="open at"):
        stock.check_sale(1, NOW)
    stock.check_sale(1, opens)
    with pytest.raises(SaleWindowError, match="closed at"):
        stock.check_sale(1, closes)


def unit(transferable: bool = True) -> Unit:
    good = mint()
    return Unit.issue(
        good_id=good.id,
        tier="own",
        serial=1,
        transferable=transferable,
        buyer="carol",
        sale_id="s1",
        channel="shop",
        price=PRICE,
        split=split(1000, good.primary_shares("shop", 500)),
        now=NOW,
    )


def test_only_the_holder_resells_and_only_transferable_units() -> None:
    with pytest.raises(NotTransferableError):
        unit(transferable=False).check_resale("carol", "dave")
    held = unit()
    with pytest.raises(NotHolderError):
        held.check_resale("mallory", "dave")
    with pytest.raises(SelfTradeError):
        held.check_resale("carol", "carol")
    held.resell(
        resale_id="r1", seller="carol", buyer="dave", channel="shop", price=PRICE, split=[], now=NOW
    )
    assert held.holder == "dave"


def test_refunds_unwind_acquisitions_newest_first() -> None:
    held = unit()
    held.resell(
        resale_id="r1", seller="carol", buyer="dave", channel="shop", price=PRICE, split=[], now=NOW
    )
    assert held.refund(refund_id="f1", reason="x", now=NOW)["kind"] == "resale"
    assert held.holder == "carol"
    assert held.refund(refund_id="f2", reason="x", now=NOW)["kind"] == "sale"
    assert held.holder is None
    with pytest.raises(UnitNotHeldError):
        held.refund(refund_id="f3", reason="x", now=NOW)


def test_variants_follow_the_masters_rules() -> None:
    rules = {
        "max_variants": 1,
        "max_supply_per_variant": 50,
        "master_primary_bps": 1000,
        "master_resale_bps": 100,
    }
    master = mint(variant_rules=rules)
    small = GoodSpec.from_json(good_spec(title="Red", tiers=[{"name": "own", "quota": 50}]))
    with pytest.raises(VariantRuleError, match="may not exceed"):
        master.derive_variant(
            GoodSpec.from_json(good_spec(title="Big", tiers=[{"name": "own", "quota": 51}])), NOW
        )
    with pytest.raises(VariantRuleError, match="currency"):
        master.derive_variant(GoodSpec.from_json(good_spec(currency="USD")), NOW)
    variant = master.derive_variant(small, NOW)
    assert master.variants == [str(variant.id)]
    assert variant.master_id == master.id
    assert variant.definition["master"]["fingerprint"] == master.fingerprint
    with pytest.raises(VariantRuleError, match="all derived"):
        master.derive_variant(small, NOW + timedelta(seconds=1))
    with pytest.raises(VariantRuleError, match="no variant rules"):
        variant.derive_variant(small, NOW)  # a variant may not declare rules of its own
    with pytest.raises(VariantRuleError, match="no variant rules"):
        mint().derive_variant(small, NOW)


def test_master_creators_share_in_a_variants_sales() -> None:
    master = mint(
        variant_rules={
            "max_variants": 1,
            "max_supply_per_variant": 50,
            "master_primary_bps": 1000,
            "master_resale_bps": 500,
        }
    )
    variant = master.derive_variant(
        GoodSpec.from_json(
            good_spec(
                title="Red",
                creators=[{"id": "carmen", "share_bps": 10000}],
                tiers=[{"name": "own", "quota": 5}],
                resale_bps=1000,
            )
        ),
        NOW,
    )
    primary = split(10_000, variant.primary_shares("shop", 500))
    assert primary == [
        {"recipient": "carmen", "role": "creator", "amount": 8500},
        {"recipient": "alice", "role": "master-creator", "amount": 700},
        {"recipient": "bob", "role": "master-creator", "amount": 300},
        {"recipient": "shop", "role": "channel", "amount": 500},
    ]
    resale = split(10_000, variant.resale_shares("shop", 500, "dave"))
    assert [p["amount"] for p in resale] == [1000, 350, 150, 500, 8000]


def test_an_event_that_does_not_extend_the_chain_is_refused() -> None:
    stock = TierStock.open(mint(), "own", NOW)
    sell(stock)
    opened, sold = stock.collect_events()
    rebuilt = opened.mutate(None)
    forged = dataclasses.replace(sold, prev_hash="f" * 64)
    with pytest.raises(ChainError, match="prev_hash"):
        forged.mutate(rebuilt)
    skipped = dataclasses.replace(sold, originator_version=3)
    with pytest.raises(ChainError, match="does not follow"):
        skipped.mutate(rebuilt)
    sold.mutate(rebuilt)
    assert rebuilt.head_hash == sold.hash
