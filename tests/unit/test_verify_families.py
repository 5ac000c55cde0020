"""Each rule family of the verifier fed its own events alone, with a facts
object and no core: what it flags, and what it leaves in the shared facts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.verify.accounts import AccountRules
from ledger.verify.allowances import AllowanceRules
from ledger.verify.code_events import CodeEvents
from ledger.verify.codec import ZERO_HASH, derive_id
from ledger.verify.codes import CodeRules
from ledger.verify.facts import Event, Facts, Good, Sale, Stock
from ledger.verify.goods import GoodRules, Splits
from ledger.verify.holds import HoldRules
from ledger.verify.packing import KIND_CODES, Unit, pack, uuid_key
from ledger.verify.records import CommandRecords
from ledger.verify.schema import KINDS
from ledger.verify.state import StateTable
from ledger.verify.stock import StockRules
from ledger.verify.units import UnitRules, acquisition

TS = "2026-11-22T07:25:02.179930Z"
LATER = "2026-11-22T08:25:02.179930Z"
EUR = {"amount": 1000, "currency": "EUR"}


class World:
    """A facts object, the families over it, and the findings they flag."""

    def __init__(self) -> None:
        self.found: list[tuple[int | None, str]] = []
        self.messages: list[str] = []
        self.table = StateTable()
        self.facts = Facts(self.flag, self.table)
        self.codes = CodeRules(self.flag)
        self.records = CommandRecords(self.facts)
        self.splits = Splits()
        self.goods = GoodRules(self.facts)
        self.holds = HoldRules(self.facts, self.records, self.codes)
        self.stock = StockRules(self.facts, self.records, self.holds, self.codes, self.splits)
        self.accounts = AccountRules(self.facts)
        self.units = UnitRules(self.facts, self.records, self.codes, self.splits, self.accounts)
        self.allowances = AllowanceRules(self.facts)
        self.code_events = CodeEvents(self.facts, self.records, self.codes)
        self.position = 0

    def flag(
        self,
        ev: Event,
        check: str,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        self.found.append((ev.position, check))
        self.messages.append(message)

    def event(
        self, aggregate_id: str, event_type: str, payload: dict[str, Any], *, version: int = 1
    ) -> Event:
        """An event whose chain the core has recorded (as it does before the rules)."""
        self.position += 1
        ev = Event(
            self.position,
            aggregate_id,
            version,
            event_type,
            TS,
            ZERO_HASH,
            payload,
            key=uuid_key(aggregate_id),
        )
        if self.table.get(ev.key) is None:
            code = KIND_CODES[KINDS[event_type]]
            self.table.add(ev.key, pack(b"\0" * 32, version, self.position, code, None, None))
        return ev

    def checks(self) -> list[str]:
        return [check for _, check in self.found]


@pytest.fixture
def world() -> Iterator[World]:
    found = World()
    yield found
    found.table.close()


def new_id() -> str:
    return str(uuid.uuid4())


def a_stock(world: World, **changes: Any) -> tuple[str, Stock]:
    """A tier's stock in the facts, as stock.opened leaves it."""
    good_id = new_id()
    stock_id = derive_id("stock", good_id, "gold")
    stock = Stock(
        good_id=good_id,
        tier="gold",
        supply=2,
        lifetime_cap=5,
        restockable=False,
        transferable=True,
        per_buyer_limit=None,
        opens=None,
        closes=None,
    )
    for name, value in changes.items():
        setattr(stock, name, value)
    world.facts.stocks[stock_id] = stock
    return stock_id, stock


def a_good(world: World, good_id: str) -> Good:
    good = Good(
        event=Event(None),
        fingerprint="0" * 64,
        currency="EUR",
        kind="ticket",
        creators=[("alice", 10_000)],
        resale_bps=1000,
        policy="absolute",
        opens=None,
        closes=None,
        tiers={},
        variant_rules=None,
        unopened=None,
    )
    world.facts.goods[good_id] = good
    return good


def sold(sale_id: str, serials: list[int], **changes: Any) -> dict[str, Any]:
    payload = {
        "sale_id": sale_id,
        "buyer": "bob",
        "channel": "shop",
        "serials": serials,
        "unit_price": EUR,
        "split": [{"recipient": "alice", "role": "creator", "amount": 1000}],
    }
    return payload | changes


# -- goods ------------------------------------------------------------------------
def test_goods_channel_with_an_underived_id(world: World) -> None:
    ev = world.event(
        derive_id("channel", "other"),
        "channel.registered",
        {"channel": "shop", "name": "Shop", "fee_bps": 500},
    )
    world.goods.on_channel_registered(ev, ev.payload or {})
    assert world.found == [(1, "bad-id")]
    assert world.facts.channels == {"shop": 500}


def test_goods_variant_never_minted(world: World) -> None:
    master_id = new_id()
    a_good(world, master_id)
    fingerprint = "1" * 64
    ev = world.event(
        master_id,
        "good.variant-derived",
        {
            "variant_id": derive_id("good", fingerprint),
            "variant_fingerprint": fingerprint,
            "index": 2,
        },
        version=2,
    )
    world.goods.on_variant_derived(ev, ev.payload or {})
    # No variant rules on the master, and an index that is not the next one.
    assert world.checks() == ["variant-mismatch", "variant-limit"]
    world.goods.finish()
    assert world.checks()[-1] == "variant-mismatch"
    assert "is never minted" in world.messages[-1]


def test_goods_fingerprint_of_another_definition(world: World) -> None:
    good_id = derive_id("good", "2" * 64)
    ev = world.event(good_id, "good.minted", {"definition": {"spec": {}}, "fingerprint": "2" * 64})
    world.goods.on_minted(ev, ev.payload or {})
    assert world.checks() == ["bad-fingerprint", "bad-definition"]
    assert good_id in world.facts.unreadable  # a definition that cannot be read
    assert good_id not in world.facts.goods


# -- stock ------------------------------------------------------------------------
def test_stock_sales_take_serials_in_order_within_the_supply(world: World) -> None:
    stock_id, stock = a_stock(world)
    first = world.event(stock_id, "stock.sold", sold(new_id(), [1]), version=2)
    world.stock.on_sold(first, first.payload or {})
    assert world.found == []
    assert stock.next_serial == 2
    assert first.payload is not None
    assert first.payload["sale_id"] in world.facts.sales  # its unit events are awaited
    assert len(world.facts.awaited_units) == 1
    skipping = world.event(stock_id, "stock.sold", sold(new_id(), [3]), version=3)
    world.stock.on_sold(skipping, skipping.payload or {})
    assert world.found == [(2, "serial-order")]
    over = world.event(stock_id, "stock.sold", sold(new_id(), [2, 4]), version=4)
    world.stock.on_sold(over, over.payload or {})
    assert world.found[1:] == [(3, "oversold")]


def test_stock_restock_of_an_absolute_edition(world: World) -> None:
    stock_id, stock = a_stock(world)
    ev = world.event(stock_id, "stock.restocked", {"quantity": 4, "supply": 6}, version=2)
    world.stock.on_restocked(ev, ev.payload or {})
    assert world.checks() == ["restock-forbidden", "lifetime-cap"]
    assert stock.supply == 6


def test_stock_return_of_a_serial_never_sold(world: World) -> None:
    stock_id, stock = a_stock(world)
    ev = world.event(stock_id, "stock.returned", {"serial": 1, "refund_id": new_id()}, version=2)
    world.stock.on_returned(ev, ev.payload or {})
    assert world.checks() == ["serial-not-live", "return-mismatch"]
    assert stock.free == []


def test_stock_sale_outside_its_window(world: World) -> None:
    stock_id, _ = a_stock(world, opens=LATER)
    ev = world.event(stock_id, "stock.sold", sold(new_id(), [1]), version=2)
    world.stock.on_sold(ev, ev.payload or {})
    assert world.checks() == ["sale-window"]


# -- holds, pools, waitlists and rates --------------------------------------------
def test_holds_made_twice_and_released_wrongly(world: World) -> None:
    stock_id, stock = a_stock(world)
    world.facts.channels["shop"] = 500
    hold_id = new_id()
    reserve = {"hold_id": hold_id, "channel": "shop", "quantity": 2, "expires_at": LATER}
    for version in (2, 3):
        ev = world.event(stock_id, "stock.reserved", reserve, version=version)
        world.holds.on_reserved(ev, reserve)
    assert world.found == [(2, "hold-state")]
    assert stock.reserved == 2
    release = {"hold_id": hold_id, "quantity": 1, "reason": "released"}
    ev = world.event(stock_id, "stock.hold-released", release, version=4)
    world.holds.on_released(ev, release)
    assert world.found[1:] == [(3, "hold-mismatch")]
    assert (stock.reserved, stock.holds[hold_id].state) == (0, "released")
    again = world.event(stock_id, "stock.hold-released", release, version=5)
    world.holds.on_released(again, release)
    assert world.found[2:] == [(4, "hold-state")]


def test_holds_pool_drawn_beyond_it_and_never_sold(world: World) -> None:
    stock_id, _ = a_stock(world)
    world.facts.channels["shop"] = 500
    allot = {"channel": "shop", "quantity": 1, "overflow": False}
    ev = world.event(stock_id, "stock.allotted", allot, version=2)
    world.holds.on_allotted(ev, allot)
    draw = {"channel": "shop", "quantity": 2, "sale_id": new_id()}
    ev = world.event(stock_id, "stock.pool-drawn", draw, version=3)
    world.holds.on_pool_drawn(ev, draw)
    assert world.found == [(2, "pool-mismatch")]
    world.holds.finish()  # the sale it draws for never came
    assert world.found[1:] == [(2, "pool-mismatch")]


def test_holds_waitlist_left_twice_and_rate_exceeded(world: World) -> None:
    stock_id, stock = a_stock(world)
    ev = world.event(stock_id, "stock.waitlist-left", {"entry_id": new_id()}, version=2)
    world.holds.on_waitlist_left(ev, ev.payload or {})
    assert world.checks() == ["waitlist-state"]
    stock.rates["shop"] = [1, "", 0]
    sale = world.event(stock_id, "stock.sold", sold(new_id(), [1, 2]), version=3)
    world.holds.check_rate(sale, stock, sale.payload or {})
    assert world.found[1:] == [(2, "rate-limit")]


# -- units ------------------------------------------------------------------------
def test_units_issued_for_no_sale(world: World) -> None:
    good_id = new_id()
    payload = {
        "good_id": good_id,
        "tier": "gold",
        "serial": 1,
        "transferable": True,
        "holder": "bob",
        "sale_id": new_id(),
        "channel": "shop",
        "price": EUR,
        "split": [],
    }
    ev = world.event(derive_id("unit", good_id, "gold", 1), "unit.issued", payload)
    world.units.on_issued(ev, payload)
    assert world.checks() == ["unknown-ref", "unit-mismatch"]
    unit = world.facts.packed.unit(ev.key)
    assert unit is not None
    assert (unit.serial, unit.holder) == (1, "bob")


def test_units_issued_as_their_sale_says(world: World) -> None:
    stock_id, stock = a_stock(world)
    sale = world.event(stock_id, "stock.sold", sold(new_id(), [1]), version=2)
    world.stock.on_sold(sale, sale.payload or {})
    assert sale.payload is not None
    unit_id = derive_id("unit", stock.good_id, "gold", 1)
    payload = {
        "good_id": stock.good_id,
        "tier": "gold",
        "serial": 1,
        "transferable": True,
        "holder": "carol",  # not the buyer
        "sale_id": sale.payload["sale_id"],
        "channel": "shop",
        "price": EUR,
        "split": sale.payload["split"],
    }
    ev = world.event(unit_id, "unit.issued", payload)
    world.units.on_issued(ev, payload)
    assert world.found == [(2, "unit-mismatch")]
    assert "holder 'carol' (sale: 'bob')" in world.messages[0]
    assert world.facts.sales == {}  # every serial answered, no limit to count


def test_units_resold_by_another_and_refunded_wrongly(world: World) -> None:
    stock_id, _ = a_stock(world, transferable=False)
    unit_id = new_id()
    ev = world.event(unit_id, "unit.issued", {})
    bought = {"price": EUR, "split": []}
    sale_id = new_id()
    world.facts.packed.keep_unit(
        ev.key,
        Unit(
            stock_id, 1, False, "bob", [acquisition(sale_id, "sale", "bob", None, bought)], "shop"
        ),
    )
    resale = {
        "resale_id": new_id(),
        "seller": "carol",
        "buyer": "dave",
        "channel": "shop",
        "price": EUR,
        "split": [],
    }
    ev = world.event(unit_id, "unit.resold", resale, version=2)
    world.units.on_resold(ev, resale)
    assert world.checks() == ["not-holder", "not-transferable"]
    refund = {
        "refund_id": new_id(),
        "acquisition_id": sale_id,  # not the latest acquisition (the resale)
        "kind": "sale",
        "holder": "bob",
        "returned_to": None,
        "price": EUR,
        "split": [],
        "reason": "",
    }
    ev = world.event(unit_id, "unit.refunded", refund, version=3)
    world.units.on_refunded(ev, refund)
    assert world.found[2:] == [(3, "refund-mismatch")]
    assert refund["refund_id"] in world.facts.refunds  # its returned serial is awaited


# -- allowances -------------------------------------------------------------------
def test_allowances_over_the_limit_and_unreferenced(world: World) -> None:
    stock_id, _ = a_stock(world, per_buyer_limit=1)
    allowance_id = derive_id("allowance", stock_id, "bob")
    start = {"stock_id": stock_id, "buyer": "bob"}
    ev = world.event(allowance_id, "allowance.started", start)
    world.allowances.on_started(ev, start)
    assert world.found == []
    count = {"delta": 2, "reference": new_id()}
    ev = world.event(allowance_id, "allowance.counted", count, version=2)
    world.allowances.on_counted(ev, count)
    assert world.found == [(2, "buyer-limit"), (2, "allowance-mismatch")]
    allowance = world.facts.packed.allowance(ev.key)
    assert allowance is not None
    assert allowance.total == 2


def test_allowances_count_of_a_sale(world: World) -> None:
    stock_id, _ = a_stock(world, per_buyer_limit=3)
    sale_id = new_id()
    world.facts.sales[sale_id] = Sale(
        Event(1), stock_id, sale_id, "bob", "shop", EUR, [], 2, {1, 2}, set(), limited=True
    )
    allowance_id = derive_id("allowance", stock_id, "bob")
    start = {"stock_id": stock_id, "buyer": "bob"}
    ev = world.event(allowance_id, "allowance.started", start)
    world.allowances.on_started(ev, start)
    count = {"delta": 1, "reference": sale_id}
    ev = world.event(allowance_id, "allowance.counted", count, version=2)
    world.allowances.on_counted(ev, count)
    assert world.found == [(2, "allowance-mismatch")]  # the sale was of 2
    assert world.facts.sales == {}  # counted (if wrongly): settled
    world.allowances.on_counted(ev, count)
    assert world.found[1:] == [(2, "allowance-mismatch")]  # no sale awaits a count now


def test_allowance_for_a_tier_without_a_limit(world: World) -> None:
    stock_id, _ = a_stock(world)
    start = {"stock_id": stock_id, "buyer": "bob"}
    ev = world.event(derive_id("allowance", stock_id, "bob"), "allowance.started", start)
    world.allowances.on_started(ev, start)
    assert world.checks() == ["allowance-mismatch"]


# -- command records --------------------------------------------------------------
def record(scope: str, key: str, command: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "scope": scope,
        "key": key,
        "command": command,
        "request_hash": "0" * 64,
        "result": result,
    }


def test_records_orphan_missing_and_mismatched(world: World) -> None:
    orphan = record("", "k1", "sell", {})
    ev = world.event(derive_id("command", "", "k1"), "command.recorded", orphan)
    world.records.on_recorded(ev, orphan)
    assert world.checks() == ["command-orphan"]
    named = derive_id("command", "", "k2")
    effect = world.event(new_id(), "stock.opened", {})
    assert world.records.name(effect, named, "resell", "resale_id")
    other = record("", "k2", "refund", {})
    ev = world.event(named, "command.recorded", other)
    world.records.on_recorded(ev, other)
    assert world.found[1:] == [(3, "command-mismatch")]
    never = new_id()
    world.records.name(effect, never, "sell", "sale_id")
    world.records.finish()
    assert world.found[2:] == [(2, "command-missing")]


def test_records_result_not_its_effects_answer(world: World) -> None:
    stock_id, _ = a_stock(world)
    command_id = derive_id("command", "", "k3")
    sale = world.event(stock_id, "stock.sold", sold(command_id, [1]), version=2)
    world.stock.on_sold(sale, sale.payload or {})
    assert command_id in world.records.answers
    answer = dict(world.records.answers[command_id].members)
    answer["quantity"] = 2
    rec = record("", "k3", "sell", answer)
    ev = world.event(command_id, "command.recorded", rec)
    world.records.on_recorded(ev, rec)
    assert world.found == [(2, "command-result")]
    assert "quantity is 2, its effects say 1" in world.messages[0]


# -- codes ------------------------------------------------------------------------
def test_code_events_of_an_unknown_good(world: World) -> None:
    payload = {"ref": "r" * 43, "good_id": new_id(), "tier": "gold", "batch_id": new_id()}
    ev = world.event(derive_id("code", payload["ref"]), "code.imported", payload)
    world.code_events.on_code_imported(ev, payload)
    assert world.checks() == ["unknown-ref"]
    assert payload["batch_id"] in world.records.named  # its import-codes record is awaited


# -- the shared facts -------------------------------------------------------------
def test_facts_sale_never_issued(world: World) -> None:
    stock_id, _ = a_stock(world, per_buyer_limit=1)
    ev = world.event(stock_id, "stock.sold", sold(new_id(), [1]), version=2)
    world.stock.on_sold(ev, ev.payload or {})
    world.facts.finish()
    assert world.found == [(1, "dangling-sale"), (1, "allowance-mismatch")]
    world.facts.clear()
    assert (world.facts.sales, world.facts.awaited_units) == ({}, {})
