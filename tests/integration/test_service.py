"""The application service on both real backends (SQLite file, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ledger.domain import errors
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

EUR = Money(1_000, "EUR")


@pytest.fixture
def ledger(store_url: DatabaseURL) -> Iterator[Ledger]:
    with Ledger(store_url) as opened:
        opened.register_channel("shop", "Shop", 500, idempotency_key="channel-shop")
        yield opened


def events_stored(ledger: Ledger) -> int:
    return int(ledger.event_store.recorder.max_notification_id() or 0)


def mint(ledger: Ledger, key: str = "mint", **spec: Any) -> str:
    return str(ledger.mint(good_spec(**spec), idempotency_key=key)["good_id"])


def test_a_unit_is_sold_resold_and_refunded(ledger: Ledger) -> None:
    good = mint(ledger)
    sale = ledger.sell(
        good, "own", buyer="carol", channel="shop", quantity=2, unit_price=EUR, idempotency_key="s1"
    )
    assert [u["serial"] for u in sale["units"]] == [1, 2]
    assert sum(p["amount"] for p in sale["split_per_unit"]) == 1_000
    unit_id = sale["units"][0]["unit_id"]
    resale = ledger.resell(
        unit_id,
        seller="carol",
        buyer="dave",
        channel="shop",
        price=Money(5_000, "EUR"),
        idempotency_key="r1",
    )
    assert sum(p["amount"] for p in resale["split"]) == 5_000
    assert ledger.unit(unit_id).holder == "dave"
    assert ledger.refund(unit_id, reason="chargeback", idempotency_key="f1")["kind"] == "resale"
    assert ledger.unit(unit_id).holder == "carol"
    assert ledger.refund(unit_id, reason="returned", idempotency_key="f2")["kind"] == "sale"
    stock = ledger.stock(good, "own")
    assert (stock.issued, stock.available, stock.free_serials) == (1, 9, [1])
    again = ledger.sell(
        good, "own", buyer="erin", channel="shop", quantity=1, unit_price=EUR, idempotency_key="s2"
    )
    assert again["units"] == [
        {"unit_id": unit_id, "serial": 1, "edition": {"serial": 1, "of": 10, "basis": "quota"}}
    ]
    assert [a["holder"] for a in ledger.unit(unit_id).acquisitions] == ["carol", "dave", "erin"]


def test_selling_one_tier_never_touches_another(ledger: Ledger) -> None:
    good = mint(ledger)
    ledger.sell(
        good,
        "view",
        buyer="carol",
        channel="shop",
        quantity=5,
        unit_price=EUR,
        idempotency_key="s1",
    )
    assert ledger.stock(good, "view").issued == 5
    assert ledger.stock(good, "own").issued == 0
    assert ledger.stock(good, "own").version == 1


def test_the_same_key_and_body_returns_the_first_answer_and_writes_nothing(
    ledger: Ledger,
) -> None:
    good = mint(ledger)
    first = ledger.sell(
        good,
        "own",
        buyer="carol",
        channel="shop",
        quantity=1,
        unit_price=EUR,
        idempotency_key="same",
    )
    stored = events_stored(ledger)
    assert (
        ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="same",
        )
        == first
    )
    assert mint(ledger, key="mint") == good
    assert events_stored(ledger) == stored
    with pytest.raises(errors.IdempotencyKeyReusedError):
        ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=2,
            unit_price=EUR,
            idempotency_key="same",
        )
    with pytest.raises(errors.IdempotencyKeyReusedError):
        ledger.restock(good, "own", 1, idempotency_key="same")
    assert events_stored(ledger) == stored
    assert ledger.stock(good, "own").issued == 1


def test_concurrent_duplicates_of_one_request_have_one_effect(ledger: Ledger) -> None:
    good = mint(ledger)

    def buy(_: int) -> dict[str, Any]:
        return ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=3,
            unit_price=EUR,
            idempotency_key="dup",
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(buy, range(16)))
    assert all(answer == answers[0] for answer in answers)
    assert ledger.stock(good, "own").issued == 3


REFUSALS: list[tuple[str, type[errors.LedgerError], Callable[[Ledger, str, str], object]]] = [
    (
        "sold out",
        errors.SoldOutError,
        lambda L, g, u: L.sell(
            g, "own", buyer="x", channel="shop", quantity=10, unit_price=EUR, idempotency_key="k"
        ),
    ),
    (
        "unknown tier",
        errors.TierNotFoundError,
        lambda L, g, u: L.sell(
            g, "gold", buyer="x", channel="shop", quantity=1, unit_price=EUR, idempotency_key="k"
        ),
    ),
    (
        "unknown good",
        errors.GoodNotFoundError,
        lambda L, g, u: L.sell(
            "00000000-0000-0000-0000-000000000000",
            "own",
            buyer="x",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="k",
        ),
    ),
    (
        "unknown channel",
        errors.ChannelNotFoundError,
        lambda L, g, u: L.sell(
            g, "own", buyer="x", channel="nope", quantity=1, unit_price=EUR, idempotency_key="k"
        ),
    ),
    (
        "wrong currency",
        errors.CurrencyMismatchError,
        lambda L, g, u: L.sell(
            g,
            "own",
            buyer="x",
            channel="shop",
            quantity=1,
            unit_price=Money(1, "USD"),
            idempotency_key="k",
        ),
    ),
    (
        "zero quantity",
        errors.InvalidInputError,
        lambda L, g, u: L.sell(
            g, "own", buyer="x", channel="shop", quantity=0, unit_price=EUR, idempotency_key="k"
        ),
    ),
    (
        "bad buyer id",
        errors.InvalidInputError,
        lambda L, g, u: L.sell(
            g, "own", buyer="a b", channel="shop", quantity=1, unit_price=EUR, idempotency_key="k"
        ),
    ),
    (
        "empty key",
        errors.InvalidInputError,
        lambda L, g, u: L.sell(
            g, "own", buyer="x", channel="shop", quantity=1, unit_price=EUR, idempotency_key=""
        ),
    ),
    (
        "over the buyer limit",
        errors.BuyerLimitError,
        lambda L, g, u: L.sell(
            g, "own", buyer="carol", channel="shop", quantity=2, unit_price=EUR, idempotency_key="k"
        ),
    ),
    (
        "resale by a non-holder",
        errors.NotHolderError,
        lambda L, g, u: L.resell(
            u, seller="mallory", buyer="x", channel="shop", price=EUR, idempotency_key="k"
        ),
    ),
    (
        "resale of a view unit",
        errors.NotTransferableError,
        lambda L, g, u: L.resell(
            L.sell(
                g,
                "view",
                buyer="v",
                channel="shop",
                quantity=1,
                unit_price=EUR,
                idempotency_key="view",
            )["units"][0]["unit_id"],
            seller="v",
            buyer="x",
            channel="shop",
            price=EUR,
            idempotency_key="k",
        ),
    ),
    (
        "restock of an absolute edition",
        errors.AbsoluteEditionError,
        lambda L, g, u: L.restock(g, "own", 5, idempotency_key="k"),
    ),
    (
        "unknown unit",
        errors.UnitNotFoundError,
        lambda L, g, u: L.refund(
            "00000000-0000-0000-0000-000000000000", reason="x", idempotency_key="k"
        ),
    ),
    (
        "invalid spec",
        errors.InvalidInputError,
        lambda L, g, u: L.mint(good_spec(tiers=[{"name": "own", "quota": 0}]), idempotency_key="k"),
    ),
    (
        "variant without rules",
        errors.VariantRuleError,
        lambda L, g, u: L.derive_variant(g, good_spec(title="v"), idempotency_key="k"),
    ),
    (
        "duplicate channel",
        errors.ChannelAlreadyExistsError,
        lambda L, g, u: L.register_channel("shop", "Again", 100, idempotency_key="k"),
    ),
    (
        "fee out of range",
        errors.InvalidInputError,
        lambda L, g, u: L.register_channel("mall", "Mall", 10_001, idempotency_key="k"),
    ),
]


@pytest.mark.parametrize(("case", "error", "command"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refused_command_raises_its_domain_error_and_writes_nothing(
    ledger: Ledger,
    case: str,
    error: type[errors.LedgerError],
    command: Callable[[Ledger, str, str], object],
) -> None:
    good = mint(
        ledger,
        tiers=[
            {"name": "own", "quota": 5, "per_buyer_limit": 2},
            {"name": "view", "quota": 5, "transferable": False},
        ],
    )
    unit = ledger.sell(
        good,
        "own",
        buyer="carol",
        channel="shop",
        quantity=1,
        unit_price=EUR,
        idempotency_key="first",
    )["units"][0]["unit_id"]
    if case == "resale of a view unit":  # its setup sale is allowed to write
        ledger.sell(
            good,
            "view",
            buyer="v",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="view",
        )
    stored = events_stored(ledger)
    with pytest.raises(error) as caught:
        command(ledger, good, unit)
    assert caught.value.message
    assert events_stored(ledger) == stored


def test_a_variant_records_lineage_both_ways(ledger: Ledger) -> None:
    master = mint(
        ledger,
        variant_rules={
            "max_variants": 2,
            "max_supply_per_variant": 10,
            "master_primary_bps": 1_000,
            "master_resale_bps": 0,
        },
    )
    variant = ledger.derive_variant(
        master, good_spec(title="Red", tiers=[{"name": "own", "quota": 10}]), idempotency_key="v1"
    )
    assert variant["master_id"] == master
    assert ledger.fresh_good(master).variants == [variant["good_id"]]
    assert str(ledger.good(variant["good_id"]).master_id) == master
    sale = ledger.sell(
        variant["good_id"],
        "own",
        buyer="carol",
        channel="shop",
        quantity=1,
        unit_price=EUR,
        idempotency_key="s",
    )
    roles = {(p["recipient"], p["role"]): p["amount"] for p in sale["split_per_unit"]}
    assert roles[("alice", "master-creator")] == 70
    assert roles[("bob", "master-creator")] == 30


def test_a_fresh_process_rebuilds_exactly_the_live_state(
    ledger: Ledger, store_url: DatabaseURL
) -> None:
    good = mint(
        ledger,
        policy="restockable",
        tiers=[{"name": "own", "quota": 5, "lifetime_cap": 9, "per_buyer_limit": 3}],
    )
    sale = ledger.sell(
        good, "own", buyer="carol", channel="shop", quantity=3, unit_price=EUR, idempotency_key="s1"
    )
    unit = sale["units"][1]["unit_id"]
    ledger.resell(
        unit, seller="carol", buyer="dave", channel="shop", price=EUR, idempotency_key="r1"
    )
    ledger.refund(sale["units"][0]["unit_id"], reason="x", idempotency_key="f1")
    ledger.restock(good, "own", 4, idempotency_key="rs")
    with Ledger(store_url, cache_size=0) as replayed:
        for live, again in [
            (ledger.stock(good, "own"), replayed.stock(good, "own")),
            (ledger.unit(unit), replayed.unit(unit)),
            (ledger.fresh_good(good), replayed.fresh_good(good)),
        ]:
            assert vars(again) == vars(live)


def test_reads_of_what_this_process_wrote_see_what_others_wrote_since(
    ledger: Ledger, store_url: DatabaseURL
) -> None:
    good = mint(ledger, tiers=[{"name": "own", "quota": 50}])
    for i in range(20):
        ledger.sell(
            good,
            "own",
            buyer=f"b{i}",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key=f"s{i}",
        )
    before = ledger.stock(good, "own")  # from what this process committed last
    assert before.issued == 20
    with Ledger(store_url) as other:  # another process sells one more
        other.sell(
            good,
            "own",
            buyer="zed",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="z",
        )
    after = ledger.stock(good, "own")
    assert after.issued == 21
    assert after.version == before.version + 1
    with Ledger(store_url, cache_size=0) as replayed:
        assert vars(replayed.stock(good, "own")) == vars(after)
    after.supply = -1  # a reader's copy is its own
    assert ledger.stock(good, "own").supply == 50


def test_a_retry_after_a_restart_gets_the_first_answer_even_once_sold_out(
    ledger: Ledger, store_url: DatabaseURL
) -> None:
    good = mint(ledger, tiers=[{"name": "own", "quota": 1}])
    first = ledger.sell(
        good,
        "own",
        buyer="carol",
        channel="shop",
        quantity=1,
        unit_price=EUR,
        idempotency_key="order-1",
    )
    with Ledger(store_url) as restarted:  # knows nothing of order-1 in memory
        again = restarted.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="order-1",
        )
        assert again == first
        with pytest.raises(errors.IdempotencyKeyReusedError):
            restarted.sell(
                good,
                "own",
                buyer="dave",
                channel="shop",
                quantity=1,
                unit_price=EUR,
                idempotency_key="order-1",
            )
        with pytest.raises(errors.SoldOutError):
            restarted.sell(
                good,
                "own",
                buyer="dave",
                channel="shop",
                quantity=1,
                unit_price=EUR,
                idempotency_key="order-2",
            )
