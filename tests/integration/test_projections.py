"""Views: exact numbers, exactly once, rebuildable, equal to a replay."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.domain.errors import InvalidInputError
from ledger.domain.money import Money
from ledger.projections import BandPolicy, ProjectionRunner, ProjectionStore, Views
from ledger.projections.queries import settlement_csv
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _now() -> str:
    return "2026-11-22T12:00:00.000000Z"


def catch_up(store: ProjectionStore) -> int:
    total = 0
    while (changes := store.apply_next(_now, limit=7)) is not None:  # small batches on purpose
        total += changes.events
    return total


@pytest.fixture
def shop(store_url: DatabaseURL) -> Any:
    clock = Clock()
    with Ledger(store_url, clock=clock) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch-shop")
        ledger.register_channel("market", "Market", 250, idempotency_key="ch-market")
        master = ledger.mint(
            good_spec(
                title="Aurora",
                policy="restockable",
                tiers=[
                    {"name": "own", "quota": 20, "transferable": True, "lifetime_cap": 40},
                    {"name": "view", "quota": 100, "transferable": False},
                ],
                variant_rules={
                    "max_variants": 3,
                    "max_supply_per_variant": 50,
                    "master_primary_bps": 1_000,
                    "master_resale_bps": 500,
                },
            ),
            idempotency_key="mint",
        )["good_id"]
        variant = ledger.derive_variant(
            master,
            good_spec(
                title="Aurora (gold)",
                creators=[{"id": "carol", "share_bps": 10_000}],
                tiers=[{"name": "own", "quota": 5, "transferable": True}],
            ),
            idempotency_key="derive",
        )["good_id"]
        yield ledger, master, variant, clock


def test_views_follow_sales_resales_refunds_and_restocks(shop: Any) -> None:
    ledger, master, variant, _ = shop
    units = [
        ledger.sell(
            master,
            "own",
            buyer=f"b{i}",
            channel="shop",
            quantity=1,
            unit_price=Money(1_000, "EUR"),
            idempotency_key=f"s{i}",
        )["units"][0]["unit_id"]
        for i in range(15)
    ]
    ledger.sell(
        master,
        "view",
        buyer="v",
        channel="market",
        quantity=3,
        unit_price=Money(100, "EUR"),
        idempotency_key="sv",
    )
    ledger.move_unit(
        units[0], holder="b0", to_channel="market", channel="shop", idempotency_key="mv0"
    )
    ledger.resell(
        units[0],
        seller="b0",
        buyer="zoe",
        channel="market",
        price=Money(5_000, "EUR"),
        idempotency_key="r0",
    )
    ledger.refund(units[1], reason="changed mind", idempotency_key="f1")
    ledger.restock(master, "own", 10, idempotency_key="rs")
    vunit = ledger.sell(
        variant,
        "own",
        buyer="b0",
        channel="shop",
        quantity=1,
        unit_price=Money(2_000, "EUR"),
        idempotency_key="sv0",
    )
    store = ProjectionStore(ledger.event_store.recorder)
    applied = catch_up(store)
    assert applied == store.store_position() == store.position().position
    views = Views(store)

    own = {s["tier"]: s for s in views.stock(master)}["own"]
    assert (
        own["quota"],
        own["issued"],
        own["available"],
        own["sold_total"],
        own["returned_total"],
    ) == (30, 14, 16, 15, 1)
    assert own["band"] == "plenty"
    assert own["display"] == "16 left"

    first = views.unit(units[0])
    assert first is not None
    history = first["history"]
    assert [
        (h["type"], h["from"], h["to"], h["channel"], h["price"] and h["price"]["amount"])
        for h in history
    ] == [
        ("unit.issued", None, "b0", "shop", 1_000),
        ("unit.moved", "b0", "b0", "market", None),  # handed off: no price
        ("unit.resold", "b0", "zoe", "market", 5_000),
    ]
    assert all(len(h["event_hash"]) == 64 for h in history)
    assert (views.unit(units[1]) or {})["holder"] is None  # refunded: back in stock

    lineage, down = views.lineage(variant), views.lineage(master)
    assert lineage is not None
    assert down is not None
    assert [m["good_id"] for m in lineage["masters"]] == [master]
    assert [v["good_id"] for v in down["variants"]] == [variant]

    # alice holds 70 % of the creators' share; the resale paid her 10 % x 70 %.
    statement = views.statement("alice", kinds=("resale",))
    assert [(line["unit_id"], line["amount"]["amount"]) for line in statement["items"]] == [
        (units[0], 350)
    ]
    everything = views.statement("alice", limit=1_000)
    assert {t["amount"]["currency"] for t in everything["totals"]} == {"EUR"}
    by_kind = {(t["good_id"], t["kind"]): t["amount"]["amount"] for t in everything["totals"]}
    # 15 primary sales of 1,000 at a 5 % fee, 10 % to the master's creators
    # on variants only: alice gets 95 % x 70 % = 665 each; one refunded.
    # Plus 3 views at 100 through market (2.5 % fee): 68 each.
    assert by_kind[(master, "primary")] == 15 * 665 + 3 * 68
    assert by_kind[(master, "primary-refund")] == -665
    assert by_kind[(master, "resale")] == 350
    # The variant's sale paid the master's creators 10 % (alice: 70 % of it).
    assert by_kind[(variant, "primary")] == 140

    shop_day = views.settlement("shop")
    assert len(shop_day) == 1
    row = shop_day[0]
    # 15 sold here and 1 of the variant, 1 refunded
    assert (row["units"], row["gross"], row["fees"]) == (15, 16_000, 800)
    assert row["net"] == row["gross"] - row["fees"] == row["royalties"] + row["seller_proceeds"]
    csv_text = settlement_csv(shop_day)
    assert csv_text.splitlines()[0] == (
        "channel,day,currency,units,gross,fees,royalties,seller_proceeds,net"
    )
    market = views.settlement("market")[0]
    assert market["seller_proceeds"] == 5_000 - 125 - 500  # fee 2.5 %, royalty 10 %

    velocity = {
        v["tier"]: v
        for v in views.velocity(master, now=T0 + timedelta(minutes=5), window_minutes=60)
    }
    assert velocity["own"]["sold_in_window"] == 15
    assert velocity["own"]["sell_out_estimate"] is not None
    assert vunit["units"][0]["serial"] == 1
    assert compare_with_replay(store).ok


def test_bands_move_with_hysteresis_as_stock_runs_down(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 0, idempotency_key="ch")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 100}]), idempotency_key="m")[
            "good_id"
        ]
        store = ProjectionStore(ledger.event_store.recorder, bands=BandPolicy(hysteresis_bps=200))
        views = Views(store)
        seen = []
        units = []
        for i in range(100):
            sold = ledger.sell(
                good,
                "own",
                buyer=f"b{i}",
                channel="shop",
                quantity=1,
                unit_price=Money(1, "EUR"),
                idempotency_key=f"s{i}",
            )
            units.append(sold["units"][0]["unit_id"])
            catch_up(store)
            seen.append(views.stock(good)[0]["band"])
        # 70 sold leaves 30 % (not above it): limited; under 10 %: scarce; under 5 %: last chance.
        assert seen[68] == "plenty"
        assert seen[69] == "limited"
        assert seen[89] == "limited"
        assert seen[90] == "scarce"
        assert seen[94] == "scarce"
        assert seen[95] == "last-chance"
        assert seen[99] == "sold-out"
        # One refund: back from sold out at once, but not above last chance.
        ledger.refund(units[0], reason="r", idempotency_key="f0")
        catch_up(store)
        assert views.stock(good)[0]["band"] == "last-chance"
        for i in (1, 2, 3, 4, 5):  # 6 left: 6 % is above 5 % but not above 5 % + 2 %
            ledger.refund(units[i], reason="r", idempotency_key=f"f{i}")
        catch_up(store)
        assert views.stock(good)[0]["band"] == "last-chance"
        ledger.refund(units[6], reason="r", idempotency_key="f6")
        catch_up(store)
        assert views.stock(good)[0]["band"] == "scarce"  # 7 % clears 5 % + 2 %
        assert compare_with_replay(store).ok


def test_two_runners_apply_each_event_exactly_once(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 500}]), idempotency_key="m")[
            "good_id"
        ]
        stores = [ProjectionStore(ledger.event_store.recorder) for _ in range(2)]
        runners = [ProjectionRunner(s, poll_interval=0.001) for s in stores]
        for runner in runners:
            runner.start()
        try:
            for i in range(120):
                ledger.sell(
                    good,
                    "own",
                    buyer=f"b{i}",
                    channel="shop",
                    quantity=2,
                    unit_price=Money(10, "EUR"),
                    idempotency_key=f"s{i}",
                )
            head = stores[0].store_position()
            assert all(r.wait_for(head, timeout=30) for r in runners)
        finally:
            for runner in runners:
                runner.stop()
        own = Views(stores[0]).stock(good)[0]
        assert own["issued"] == own["sold_total"] == 240
        assert Views(stores[0]).settlement("shop")[0]["units"] == 240
        assert stores[0].position().events == head  # each event counted once
        assert compare_with_replay(stores[0]).ok


def test_a_runner_follows_live_and_reports_lag(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(), idempotency_key="m")["good_id"]
        store = ProjectionStore(ledger.event_store.recorder)
        listen = None
        if store.dialect.postgres:
            url = ledger.url
            listen = {
                "host": url.host,
                "port": url.port,
                "user": url.user,
                "password": url.password,
                "dbname": url.dbname,
            }
        runner = ProjectionRunner(store, poll_interval=0.01, listen_dsn=listen)
        changed: list[set[str]] = []
        runner.subscribe(lambda c: changed.append(set(c.goods)))
        runner.start()
        try:
            ledger.sell(
                good,
                "own",
                buyer="b",
                channel="shop",
                quantity=1,
                unit_price=Money(10, "EUR"),
                idempotency_key="s",
            )
            assert runner.wait_for(store.store_position(), timeout=10)
        finally:
            runner.stop()
        status = runner.status()
        assert status["behind"] == 0
        assert status["lag"]["batches"] >= 1
        assert 0 <= status["lag"]["max_seconds"] < 10
        assert any(good in c for c in changed)


def test_rebuilding_from_zero_gives_the_same_views(shop: Any) -> None:
    ledger, master, _, _ = shop
    for i in range(5):
        ledger.sell(
            master,
            "own",
            buyer=f"b{i}",
            channel="shop",
            quantity=1,
            unit_price=Money(1_000, "EUR"),
            idempotency_key=f"s{i}",
        )
    store = ProjectionStore(ledger.event_store.recorder)
    catch_up(store)
    before = Views(store).stock(master)
    store.reset()
    assert store.position().position == 0
    assert Views(store).stock(master) == []
    catch_up(store)
    assert Views(store).stock(master) == before


def test_a_tampered_view_differs_from_the_replay(shop: Any) -> None:
    ledger, master, _, _ = shop
    ledger.sell(
        master,
        "own",
        buyer="b",
        channel="shop",
        quantity=2,
        unit_price=Money(1_000, "EUR"),
        idempotency_key="s",
    )
    store = ProjectionStore(ledger.event_store.recorder)
    catch_up(store)
    with store.cursor(commit=True) as cursor:
        cursor.execute(
            store.tables.sql(
                "UPDATE {stock} SET available = available + 1 WHERE good_id = ? AND tier = 'own'"
            ),
            (master,),
        )
        cursor.execute(
            store.tables.sql(
                "DELETE FROM {unit_events} WHERE version = 1 "
                "AND unit_id IN (SELECT unit_id FROM {units} "
                "WHERE serial = 2)"
            )
        )
    report = compare_with_replay(store)
    assert not report.ok
    assert report.mismatched_rows == 2
    assert any(d.startswith("stock [") and "available" in d for d in report.differences)
    assert any(
        d.startswith("unit_events [") and "missing from the live view" in d
        for d in report.differences
    )


def test_pages_walk_every_row_once_and_bad_cursors_are_refused(shop: Any) -> None:
    ledger, master, _, _ = shop
    for i in range(3):
        ledger.sell(
            master,
            "view",
            buyer=f"b{i}",
            channel="shop",
            quantity=4,
            unit_price=Money(10, "EUR"),
            idempotency_key=f"s{i}",
        )
    store = ProjectionStore(ledger.event_store.recorder)
    catch_up(store)
    views = Views(store)
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        page = views.units(master, cursor=cursor, limit=5)
        seen.extend((u["tier"], u["serial"]) for u in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [("view", s) for s in range(1, 13)]
    for bad in ("%%%", "bm90IGpzb24", "WzFd", "W3RydWVd"):
        with pytest.raises(InvalidInputError):
            views.units(master, cursor=bad)
    with pytest.raises(InvalidInputError):
        views.units(master, limit=0)
    with pytest.raises(InvalidInputError):
        views.statement("alice", from_day="22-11-2026")


def test_concurrent_writers_and_runner_agree(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 300}]), idempotency_key="m")[
            "good_id"
        ]
        store = ProjectionStore(ledger.event_store.recorder)
        runner = ProjectionRunner(store, poll_interval=0.001)
        runner.start()

        def buy(t: int) -> None:
            for i in range(50):
                try:
                    ledger.sell(
                        good,
                        "own",
                        buyer=f"t{t}b{i}",
                        channel="shop",
                        quantity=1,
                        unit_price=Money(10, "EUR"),
                        idempotency_key=f"t{t}s{i}",
                    )
                except Exception:  # sold out
                    return

        threads = [threading.Thread(target=buy, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert runner.wait_for(store.store_position(), timeout=30)
        finally:
            runner.stop()
        own = Views(store).stock(good)[0]
        assert own["issued"] == 300
        assert own["sold_out"]
        assert own["band"] == "sold-out"
        assert compare_with_replay(store).ok
