"""A Hypothesis state machine drives the ledger against a plain model.

Commands: mint, derive a variant, sell, resell, restock, refund, hand a
unit off to another channel, give it away, repeat an idempotency key (same
body and different body), and invalid commands. The model keeps who holds
each unit, through which channel (its custody), and which channels serve
each buyer's account, so every refusal of holders and authority is
predicted. After
every step the invariants hold; at teardown a fresh process rebuilds every
aggregate from the store and must equal the live state, and every chain
must verify. The projections follow along in batches of random size; at
teardown they must agree with the model and equal a fresh replay. The same
machine runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.domain import errors
from ledger.domain.money import Money
from ledger.projections import ProjectionStore, Views
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from tests.strategies import good_spec

BUYERS = ["ann", "ben", "cat", "dan"]
START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CHANNELS = {"shop": 500, "live": 1_250}
QUANTITIES = st.integers(min_value=1, max_value=4)


@dataclass
class TierModel:
    supply: int
    cap: int
    restockable: bool
    transferable: bool
    limit: int | None
    next_serial: int = 1
    free: list[int] = field(default_factory=list)
    bought: dict[str, int] = field(default_factory=dict)

    @property
    def issued(self) -> int:
        return self.next_serial - 1 - len(self.free)


@dataclass
class UnitModel:
    good: str
    tier: str
    serial: int
    holder: str | None
    # (holder, previous holder, channel, kind) per live acquisition
    stack: list[tuple[str, str | None, str, str]]
    custody: str | None = None  # the channel it is held through


class LedgerMachine(RuleBasedStateMachine):
    goods = Bundle("goods")
    masters = Bundle("masters")

    def __init__(self, url: DatabaseURL) -> None:
        super().__init__()
        self.url = url
        # A deterministic clock makes ids (which hash mint times) reproducible,
        # so a failing example replays exactly.
        ticks = itertools.count()
        self.ledger = Ledger(url, clock=lambda: START + timedelta(milliseconds=next(ticks)))
        for name, fee in CHANNELS.items():
            self.ledger.register_channel(name, name.title(), fee, idempotency_key=f"ch-{name}")
        self.tiers: dict[tuple[str, str], TierModel] = {}
        self.units: dict[str, UnitModel] = {}
        self.done: list[tuple[Callable[[str], Any], str, dict[str, Any]]] = []
        self.accounts: dict[str, list[str]] = {}  # buyer -> channels serving it
        self.keys = itertools.count()
        self.views = ProjectionStore(self.ledger.event_store.recorder)

    def teardown(self) -> None:
        try:
            with Ledger(self.url, cache_size=0) as fresh:
                for good, tier in self.tiers:
                    assert vars(fresh.stock(good, tier)) == vars(self.ledger.stock(good, tier))
                for unit_id in self.units:
                    assert vars(fresh.unit(unit_id)) == vars(self.ledger.unit(unit_id))
            report = verify_store(self.url)
            assert report.ok, report.first
            while self.views.apply_next(lambda: "2026-11-22T12:00:00.000000Z") is not None:
                pass
            views = Views(self.views)
            for (good, tier), model in self.tiers.items():
                row = next(r for r in views.stock(good) if r["tier"] == tier)
                assert (row["issued"], row["quota"], row["available"]) == (
                    model.issued,
                    model.supply,
                    model.supply - model.issued,
                )
            for unit_id, unit_model in self.units.items():
                seen = views.unit(unit_id)
                assert seen is not None
                assert seen["holder"] == unit_model.holder
            replay = compare_with_replay(self.views)
            assert replay.ok, replay.differences
        finally:
            self.ledger.close()

    def key(self) -> str:
        return f"k{next(self.keys)}"

    def stored(self) -> int:
        return int(self.ledger.event_store.recorder.max_notification_id() or 0)

    def remember(self, call: Callable[[str], Any], key: str, result: dict[str, Any]) -> None:
        self.done.append((call, key, result))

    # -- mint -------------------------------------------------------------
    @rule(
        targets=(masters, goods),
        policy=st.sampled_from(["absolute", "restockable"]),
        quota=st.integers(1, 6),
        extra=st.integers(0, 4),
        limit=st.none() | st.integers(1, 3),
        resale=st.integers(0, 3_000),
    )
    def mint(self, policy: str, quota: int, extra: int, limit: int | None, resale: int) -> str:
        cap = quota + extra if policy == "restockable" else quota
        tiers = [
            {
                "name": "own",
                "quota": quota,
                "transferable": True,
                "per_buyer_limit": min(limit, quota) if limit else None,
                "lifetime_cap": cap,
            },
            {"name": "view", "quota": 3, "transferable": False},
        ]
        spec = good_spec(
            title=f"Good {next(self.keys)}",
            tiers=tiers,
            policy=policy,
            resale_bps=resale,
            variant_rules={
                "max_variants": 2,
                "max_supply_per_variant": 5,
                "master_primary_bps": 1_000,
                "master_resale_bps": 250,
            },
        )
        key = self.key()
        result = self.ledger.mint(spec, idempotency_key=key)
        good = result["good_id"]
        for tier in tiers:
            self.tiers[(good, str(tier["name"]))] = TierModel(
                int(tier["quota"]),
                int(tier.get("lifetime_cap") or tier["quota"]),
                policy == "restockable",
                bool(tier["transferable"]),
                tier.get("per_buyer_limit"),
            )  # type: ignore[arg-type]
        self.remember(lambda k: self.ledger.mint(spec, idempotency_key=k), key, result)
        return good

    @rule(target=goods, master=masters, quota=st.integers(1, 5))
    def derive(self, master: str, quota: int) -> str:
        spec = good_spec(
            title=f"Variant {next(self.keys)}",
            tiers=[{"name": "own", "quota": quota}],
            creators=[{"id": "vera", "share_bps": 10_000}],
        )
        stored = self.stored()
        try:
            result = self.ledger.derive_variant(master, spec, idempotency_key=self.key())
        except errors.VariantRuleError:
            assert len(self.ledger.fresh_good(master).variants) == 2
            assert self.stored() == stored
            return master
        self.tiers[(result["good_id"], "own")] = TierModel(quota, quota, False, True, None)
        return str(result["good_id"])

    # -- sales ------------------------------------------------------------
    @rule(
        good=goods,
        tier=st.sampled_from(["own", "view"]),
        buyer=st.sampled_from(BUYERS),
        quantity=QUANTITIES,
        channel=st.sampled_from(sorted(CHANNELS)),
        price=st.integers(0, 10_000),
    )
    def sell(
        self, good: str, tier: str, buyer: str, quantity: int, channel: str, price: int
    ) -> None:
        model = self.tiers.get((good, tier))
        stored = self.stored()
        key = self.key()

        def call(k: str) -> dict[str, Any]:
            return self.ledger.sell(
                good,
                tier,
                buyer=buyer,
                channel=channel,
                quantity=quantity,
                unit_price=Money(price, "EUR"),
                idempotency_key=k,
            )

        if model is None:
            with pytest.raises(errors.TierNotFoundError):
                call(key)
            assert self.stored() == stored
            return
        over_limit = model.limit is not None and model.bought.get(buyer, 0) + quantity > model.limit
        if quantity > model.supply - model.issued:
            with pytest.raises(errors.SoldOutError):
                call(key)
            assert self.stored() == stored
            return
        if channel not in self.accounts.get(buyer, [channel]):
            with pytest.raises(errors.NotServedError):
                call(key)
            assert self.stored() == stored
            return
        if over_limit:
            with pytest.raises(errors.BuyerLimitError):
                call(key)
            assert self.stored() == stored
            return
        result = call(key)
        assert sum(p["amount"] for p in result["split_per_unit"]) == price
        expected = model.free[:quantity]
        fresh = quantity - len(expected)
        expected += list(range(model.next_serial, model.next_serial + fresh))
        assert [u["serial"] for u in result["units"]] == expected
        model.free = model.free[len(expected) - fresh :]
        model.next_serial += fresh
        model.bought[buyer] = model.bought.get(buyer, 0) + quantity
        self.accounts.setdefault(buyer, [channel])
        for unit in result["units"]:
            known = self.units.setdefault(
                unit["unit_id"], UnitModel(good, tier, unit["serial"], None, [])
            )
            known.holder, known.custody = buyer, channel
            known.stack.append((buyer, None, channel, "sale"))
        self.remember(call, key, result)

    def held_units(self) -> list[str]:
        return sorted(u for u, m in self.units.items() if m.holder is not None)

    @precondition(lambda self: bool(self.held_units()))
    @rule(
        data=st.data(),
        buyer=st.sampled_from([*BUYERS, "eve"]),
        honest=st.booleans(),
        price=st.integers(0, 50_000),
        channel=st.sampled_from(sorted(CHANNELS)),
    )
    def resell(
        self, data: st.DataObject, buyer: str, honest: bool, price: int, channel: str
    ) -> None:
        unit_id = data.draw(st.sampled_from(self.held_units()))
        unit = self.units[unit_id]
        seller = unit.holder if honest else "mallory"
        assert seller is not None
        stored = self.stored()
        key = self.key()

        def call(k: str) -> dict[str, Any]:
            return self.ledger.resell(
                unit_id,
                seller=seller,
                buyer=buyer,
                channel=channel,
                price=Money(price, "EUR"),
                idempotency_key=k,
            )

        transferable = self.tiers[(unit.good, unit.tier)].transferable
        refusal: type[errors.LedgerError] | None = None
        if not transferable:
            refusal = errors.NotTransferableError
        elif seller != unit.holder:
            refusal = errors.NotHolderError
        elif seller == buyer:
            refusal = errors.SelfTradeError
        elif channel != unit.custody:
            refusal = errors.NotInCustodyError
        elif channel not in self.accounts.get(buyer, [channel]):
            refusal = errors.NotServedError
        if refusal is not None:
            with pytest.raises(refusal):
                call(key)
            assert self.stored() == stored
            return
        result = call(key)
        assert sum(p["amount"] for p in result["split"]) == price
        unit.stack.append((buyer, seller, channel, "resale"))
        unit.holder = buyer
        self.accounts.setdefault(buyer, [channel])
        self.remember(call, key, result)

    @precondition(lambda self: bool(self.held_units()))
    @rule(data=st.data(), to=st.sampled_from(sorted(CHANNELS)), honest=st.booleans())
    def hand_off(self, data: st.DataObject, to: str, honest: bool) -> None:
        """The channel holding a unit takes it to another (or, dishonestly,
        a channel not holding it tries to)."""
        unit_id = data.draw(st.sampled_from(self.held_units()))
        unit = self.units[unit_id]
        assert unit.holder is not None
        assert unit.custody is not None
        acting = unit.custody if honest else next(c for c in CHANNELS if c != unit.custody)
        stored = self.stored()
        refusal: type[errors.LedgerError] | None = None
        if acting != unit.custody:
            refusal = errors.NotInCustodyError
        elif to == unit.custody:
            refusal = errors.RuleViolation
        key = self.key()
        move = {"holder": unit.holder, "to_channel": to, "channel": acting}
        if refusal is not None:
            with pytest.raises(refusal):
                self.ledger.move_unit(unit_id, idempotency_key=key, **move)
            assert self.stored() == stored
            return
        result = self.ledger.move_unit(unit_id, idempotency_key=key, **move)
        assert (result["from_channel"], result["to_channel"]) == (unit.custody, to)
        unit.custody = to
        served = self.accounts[unit.holder]
        if to not in served:
            served.append(to)

    @precondition(lambda self: bool(self.held_units()))
    @rule(data=st.data(), recipient=st.sampled_from([*BUYERS, "eve"]))
    def give(self, data: st.DataObject, recipient: str) -> None:
        """A gift through the channel holding the unit: no price, no royalty."""
        unit_id = data.draw(st.sampled_from(self.held_units()))
        unit = self.units[unit_id]
        assert unit.holder is not None
        assert unit.custody is not None
        stored = self.stored()
        refusal: type[errors.LedgerError] | None = None
        if not self.tiers[(unit.good, unit.tier)].transferable:
            refusal = errors.NotTransferableError
        elif recipient == unit.holder:
            refusal = errors.SelfTradeError
        elif unit.custody not in self.accounts.get(recipient, [unit.custody]):
            refusal = errors.NotServedError
        gift = {"giver": unit.holder, "recipient": recipient, "channel": unit.custody}
        if refusal is not None:
            with pytest.raises(refusal):
                self.ledger.transfer_unit(unit_id, idempotency_key=self.key(), **gift)
            assert self.stored() == stored
            return
        self.ledger.transfer_unit(unit_id, idempotency_key=self.key(), **gift)
        unit.stack.append((recipient, unit.holder, unit.custody, "transfer"))
        unit.holder = recipient
        self.accounts.setdefault(recipient, [unit.custody])

    @rule(good=goods, quantity=st.integers(1, 4))
    def restock(self, good: str, quantity: int) -> None:
        model = self.tiers[(good, "own")]
        stored = self.stored()
        if not model.restockable:
            with pytest.raises(errors.AbsoluteEditionError):
                self.ledger.restock(good, "own", quantity, idempotency_key=self.key())
        elif model.supply + quantity > model.cap:
            with pytest.raises(errors.LifetimeCapError):
                self.ledger.restock(good, "own", quantity, idempotency_key=self.key())
        else:
            result = self.ledger.restock(good, "own", quantity, idempotency_key=self.key())
            model.supply += quantity
            assert result["supply"] == model.supply
            return
        assert self.stored() == stored

    @precondition(lambda self: bool(self.units))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        unit_id = data.draw(st.sampled_from(sorted(self.units)))
        unit = self.units[unit_id]
        stored = self.stored()
        if unit.holder is None:
            with pytest.raises(errors.UnitNotHeldError):
                self.ledger.refund(unit_id, reason="r", idempotency_key=self.key())
            assert self.stored() == stored
            return
        if unit.stack[-1][3] == "transfer":  # nothing was paid: nothing is refunded
            with pytest.raises(errors.RuleViolation, match="transfer"):
                self.ledger.refund(unit_id, reason="r", idempotency_key=self.key())
            assert self.stored() == stored
            return
        result = self.ledger.refund(unit_id, reason="r", idempotency_key=self.key())
        holder, previous, channel, _ = unit.stack.pop()
        assert result["holder"] == holder
        unit.holder = previous
        unit.custody = channel if previous is not None else None
        if previous is None:
            assert result["kind"] == "sale"
            model = self.tiers[(unit.good, unit.tier)]
            model.free = sorted([*model.free, unit.serial])
            model.bought[holder] -= 1

    # -- idempotency and bad input ------------------------------------------
    @precondition(lambda self: bool(self.done))
    @rule(data=st.data())
    def repeat_a_key(self, data: st.DataObject) -> None:
        call, key, first = data.draw(st.sampled_from(self.done))
        stored = self.stored()
        assert call(key) == first
        assert self.stored() == stored

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data())
    def reuse_a_key_for_another_request(self, data: st.DataObject) -> None:
        _, key, _ = data.draw(st.sampled_from(self.done))
        stored = self.stored()
        with pytest.raises(errors.IdempotencyKeyReusedError):
            self.ledger.register_channel("other", "Other", 1, idempotency_key=key)
        assert self.stored() == stored

    @rule(good=goods, bad=st.sampled_from(["quantity", "currency", "buyer", "channel"]))
    def invalid_sale(self, good: str, bad: str) -> None:
        args: dict[str, Any] = {
            "buyer": "ann",
            "channel": "shop",
            "quantity": 1,
            "unit_price": Money(1, "EUR"),
        }
        args |= {
            "quantity": {"quantity": 0},
            "currency": {"unit_price": Money(1, "JPY")},
            "buyer": {"buyer": ""},
            "channel": {"channel": "ghost"},
        }[bad]
        stored = self.stored()
        with pytest.raises(errors.LedgerError):
            self.ledger.sell(good, "own", idempotency_key=self.key(), **args)
        assert self.stored() == stored

    @rule(batch=st.integers(1, 40))
    def advance_the_views(self, batch: int) -> None:
        """The views read on, a batch of random size (exactly once each)."""
        before = self.views.position().position
        changes = self.views.apply_next(lambda: "2026-11-22T12:00:00.000000Z", limit=batch)
        after = self.views.position().position
        assert after >= before
        if changes is not None:
            assert after == changes.position

    # -- invariants ---------------------------------------------------------
    @invariant()
    def stock_matches_the_model_and_never_exceeds_supply(self) -> None:
        for (good, tier), model in self.tiers.items():
            stock = self.ledger.stock(good, tier)
            assert stock.issued <= stock.supply <= stock.lifetime_cap
            assert (stock.issued, stock.supply, stock.free_serials) == (
                model.issued,
                model.supply,
                model.free,
            )

    @invariant()
    def each_units_holder_is_its_last_buyer(self) -> None:
        serials: set[tuple[str, str, int]] = set()
        for unit_id, model in self.units.items():
            unit = self.ledger.unit(unit_id)
            assert (unit.holder, unit.custody) == (model.holder, model.custody)
            assert (unit.good_id, unit.tier, unit.serial) not in serials
            serials.add((unit.good_id, unit.tier, unit.serial))


def _machine_on(make_url: Callable[[], DatabaseURL], examples: int) -> None:
    LedgerMachine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=40, deadline=None
    )
    run_state_machine_as_test(
        lambda: LedgerMachine(make_url()), settings=LedgerMachine.TestCase.settings
    )


def test_the_ledger_matches_its_model_on_sqlite() -> None:
    with tempfile.TemporaryDirectory() as directory:
        counter = itertools.count()
        _machine_on(
            lambda: DatabaseURL.parse(f"sqlite:///{Path(directory) / f'm{next(counter)}.db'}"),
            examples=30,
        )


@pytest.mark.postgres
def test_the_ledger_matches_its_model_on_postgres(postgres_database: DatabaseURL) -> None:
    from ledger.store.postgres import create_schema

    counter = itertools.count()

    def fresh_schema() -> DatabaseURL:
        url = DatabaseURL.parse(f"{postgres_database.display()}?schema=machine{next(counter)}")
        create_schema(url)
        return url

    _machine_on(fresh_schema, examples=20)
