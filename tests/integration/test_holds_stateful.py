"""Any interleaving of reserve, commit (on time or late), release, expiry
(time passing, sweeps), allot / return / move between channels' pools,
per-channel rate rules, sales through either channel, refunds, and
pausing, resuming and (rarely) delisting the tier or the whole good, and
sales of a second tier that unlocks once the first has sold UNLOCK_AFTER
units, and a price schedule on the first tier (set, changed, lifted; sales
at its price or not): the counts balance, every hold is resolved exactly once, no
channel sells past its rate in any minute, no sale or hold is made while
its tier is paused or delisted, and none of the second tier before it
unlocked, and every sale the schedule prices is at its price in force; on a redemption-code good, the codes balance
too (every held unit has a code lent, every issued unit one bound). A
Hypothesis state machine against a plain model, on SQLite and PostgreSQL;
at teardown the auditor's verification passes and the views equal the
model and a fresh replay."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from ledger.domain import errors
from ledger.domain.money import Money
from ledger.domain.pricing import price_in_force
from ledger.projections import ProjectionStore, Views
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.service.holds import sweep
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from tests.strategies import good_spec

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SUPPLY = 12
LATE_SUPPLY = 6  # the second tier's, locked until "own" has sold UNLOCK_AFTER units
UNLOCK_AFTER = 2
PRICE = Money(100, "EUR")


@dataclass
class HoldModel:
    channel: str
    quantity: int
    expires_at: datetime
    state: str = "held"


class HoldMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self, url: DatabaseURL, coded: bool = False) -> None:
        super().__init__()
        self.now = START
        self.coded = coded
        self.ledger = Ledger(url, clock=lambda: self.now, code_keyring=Keyring.generate())
        for channel in ("shop", "live"):
            self.ledger.register_channel(channel, channel, 500, idempotency_key=f"ch-{channel}")
        late = {"name": "late", "quota": LATE_SUPPLY}
        late["unlock"] = {"tier": "own", "sold": UNLOCK_AFTER}
        spec = good_spec(tiers=[{"name": "own", "quota": SUPPLY}, late])
        spec["kind"] = "redemption-code" if coded else "collectible"
        self.good = str(self.ledger.mint(spec, idempotency_key="mint")["good_id"])
        if coded:  # exactly one code a unit: codes never run out before units do
            self.ledger.import_codes(
                self.good,
                "own",
                code_range={"prefix": "K-", "width": 4, "start": 1, "end": SUPPLY},
                idempotency_key="codes",
            )
            self.ledger.import_codes(
                self.good,
                "late",
                code_range={"prefix": "L-", "width": 4, "start": 1, "end": LATE_SUPPLY},
                idempotency_key="late-codes",
            )
        self.model: dict[str, HoldModel] = {}
        self.pools: dict[str, list[int | bool]] = {}  # channel -> [free, overflow]
        self.caps: dict[str, int | None] = {}  # channel -> units a minute (a rule exists)
        self.minute_sold: dict[tuple[str, str], int] = {}
        self.paused: set[str] = set()  # the pauses in force on "own": "tier", "good"
        self.delisted = False
        self.late_paused = False  # the good's pause on "late"
        self.late_delisted = False
        self.own_sold = 0  # units "own" ever sold (refunds not subtracted)
        self.late_open = False
        self.late_issued = 0
        self.prices: list[dict[str, object]] | None = None  # "own"'s price schedule
        self.issued = 0
        self.units: list[str] = []  # units held by buyers (primary sales), refundable
        self.keys = itertools.count()
        self.views = ProjectionStore(self.ledger.event_store.recorder)

    def key(self) -> str:
        return f"k{next(self.keys)}"

    @property
    def reserved(self) -> int:
        return sum(h.quantity for h in self.model.values() if h.state == "held")

    def price_now(self) -> Money:
        """The unit price a sale of "own" pays now (PRICE without a schedule)."""
        if self.prices is None:
            return PRICE
        in_force = price_in_force(self.prices, self.own_sold, self.now)
        return Money(int(in_force["amount"]), str(in_force["currency"]))

    @property
    def blocked(self) -> bool:
        """Sales and holds are refused (paused or delisted)."""
        return self.delisted or bool(self.paused)

    @property
    def pooled(self) -> int:
        return sum(int(p[0]) for p in self.pools.values())

    @property
    def shared(self) -> int:
        return SUPPLY - self.issued - self.reserved - self.pooled

    @property
    def minute(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M")

    def rate_ok(self, channel: str, quantity: int) -> bool:
        cap = self.caps.get(channel)
        return cap is None or self.minute_sold.get((channel, self.minute), 0) + quantity <= cap

    def count_sale(self, channel: str, quantity: int) -> None:
        if channel in self.caps:  # the stock counts only once a rule exists
            key = (channel, self.minute)
            self.minute_sold[key] = self.minute_sold.get(key, 0) + quantity

    def sources(self, channel: str, quantity: int) -> tuple[int, int] | None:
        """(from the pool, from the shared stock), or None if it cannot be sold."""
        pool = self.pools.get(channel)
        if pool is None:
            return (0, quantity) if quantity <= self.shared else None
        drawn = min(quantity, int(pool[0]))
        rest = quantity - drawn
        if rest and (not pool[1] or rest > self.shared):
            return None
        return drawn, rest

    def teardown(self) -> None:
        try:
            report = verify_store(self.ledger.url)
            assert report.ok, report.first
            while self.views.apply_next(lambda: "2026-11-22T12:00:00.000000Z") is not None:
                pass
            tiers = {t["tier"]: t for t in Views(self.views).stock(self.good)}
            stock = tiers["own"]
            assert (stock["issued"], stock["reserved"], stock["pooled"]) == (
                self.issued,
                self.reserved,
                self.pooled,
            )
            states = {
                h["hold_id"]: h["state"]
                for h in Views(self.views).holds(self.good, limit=1_000).items
            }
            assert states == {h: m.state for h, m in self.model.items()}
            assert stock["sale_state"] == (
                "delisted" if self.delisted else "paused" if self.paused else "on-sale"
            )
            assert set(stock["paused"]) == self.paused
            late = tiers["late"]
            assert late["issued"] == self.late_issued
            assert (late["unlocked_at"] is not None) == self.late_open
            replay_states = {
                "delisted": self.late_delisted,
                "paused": self.late_paused and not self.late_delisted,
                "locked": not self.late_open,
            }
            assert late["sale_state"] == next(
                (state for state, holds in replay_states.items() if holds), "on-sale"
            )
            replay = compare_with_replay(self.views)
            assert replay.ok, replay.differences
        finally:
            self.ledger.close()

    # -- rules ------------------------------------------------------------------
    @rule(
        target=holds,
        channel=st.sampled_from(["shop", "live"]),
        quantity=st.integers(1, 5),
        ttl=st.integers(1, 30),
    )
    def reserve(self, channel: str, quantity: int, ttl: int) -> str:
        available = self.shared
        try:
            hold = self.ledger.reserve(
                self.good,
                "own",
                channel=channel,
                quantity=quantity,
                ttl_seconds=ttl,
                idempotency_key=self.key(),
            )
        except (errors.PausedError, errors.DelistedError):
            assert self.blocked
            return "00000000-0000-4000-8000-000000000000"
        except errors.SoldOutError:
            assert quantity > available
            return "00000000-0000-4000-8000-000000000000"
        assert not self.blocked
        assert quantity <= available
        self.model[hold["hold_id"]] = HoldModel(
            channel, quantity, self.now + timedelta(seconds=ttl)
        )
        return str(hold["hold_id"])

    @rule(hold=holds, part=st.integers(1, 5), as_channel=st.booleans())
    def commit(self, hold: str, part: int, as_channel: bool) -> None:
        model = self.model.get(hold)
        if model is None:
            return
        quantity = min(part, model.quantity)
        channel = model.channel if as_channel else None
        before = model.state
        late = self.now >= model.expires_at
        if model.state in ("held", "expired") and late:
            model.state = "expired"  # (for the prediction: its units are back)
        source = self.sources(model.channel, quantity) if late else (0, quantity)
        limited = source is not None and not self.rate_ok(model.channel, quantity)
        try:
            answer = self.ledger.commit_hold(
                self.good,
                "own",
                hold,
                buyer=f"b{next(self.keys)}",
                quantity=quantity,
                unit_price=self.price_now(),
                idempotency_key=self.key(),
                channel=channel,
            )
        except errors.HoldResolvedError:
            assert before not in ("held", "expired")
            model.state = before
            return
        except (errors.PausedError, errors.DelistedError):
            assert self.blocked
            assert before in ("held", "expired")
            assert not late or source is not None  # (a refund owed is no sale)
            model.state = before  # refused whole: not even the expiry was recorded
            return
        except errors.RateLimitedError:
            assert before in ("held", "expired")
            assert limited
            assert not self.blocked  # (the pause is checked first)
            model.state = before  # refused whole: not even the expiry was recorded
            return
        assert before in ("held", "expired")
        assert not limited
        assert not self.blocked or (late and source is None)
        if not late:
            assert before == "held"
            assert answer["outcome"] == "sold"
            model.state = "committed"
        elif source is not None:
            assert answer["outcome"] == "sold-late"
            if source[0]:
                self.pools[model.channel][0] = int(self.pools[model.channel][0]) - source[0]
        else:
            assert answer["outcome"] == "refund-owed"
            return
        self.count_sale(model.channel, quantity)
        self.issued += quantity
        self.own_sold += quantity
        self.units.extend(u["unit_id"] for u in answer["units"])

    @rule(hold=holds)
    def release(self, hold: str) -> None:
        model = self.model.get(hold)
        if model is None:
            return
        try:
            answer = self.ledger.release_hold(self.good, "own", hold, idempotency_key=self.key())
        except errors.HoldResolvedError:
            assert model.state != "held"
            return
        assert model.state == "held"
        model.state = "expired" if self.now >= model.expires_at else "released"
        assert answer["how"] == model.state

    @rule(seconds=st.integers(1, 20))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(hold=holds)
    def time_reaches_an_expiry(self, hold: str) -> None:
        """Jump to the very instant a hold expires: the boundary every rule
        about expiry turns on."""
        model = self.model.get(hold)
        if model is not None and model.expires_at > self.now:
            self.now = model.expires_at

    @rule()
    def sweeper_runs(self) -> None:
        expired = sweep(self.ledger, lambda now: [(self.good, "own")], self.now)
        due = [h for h, m in self.model.items() if m.state == "held" and self.now >= m.expires_at]
        assert expired == len(due)
        for hold in due:
            self.model[hold].state = "expired"

    @rule(
        quantity=st.integers(1, 4),
        channel=st.sampled_from(["shop", "live"]),
        off=st.sampled_from([0, 0, 1]),
    )
    def sell(self, quantity: int, channel: str, off: int) -> None:
        """A sale at the price in force (or, ``off``, one more than it)."""
        source = self.sources(channel, quantity)
        limited = not self.rate_ok(channel, quantity)  # checked before the stock
        mispriced = bool(off) and self.prices is not None
        price = self.price_now()
        try:
            sold = self.ledger.sell(
                self.good,
                "own",
                buyer=f"s{next(self.keys)}",
                channel=channel,
                quantity=quantity,
                unit_price=Money(price.amount + off, "EUR"),
                idempotency_key=self.key(),
            )
        except (errors.PausedError, errors.DelistedError):
            assert self.blocked
            return
        except errors.PriceRuleError:
            event("own: refused, not at the price in force")
            assert mispriced
            assert not self.blocked
            return
        except errors.RateLimitedError:
            assert limited
            assert not self.blocked
            assert not mispriced  # (the price is checked first)
            return
        except errors.SoldOutError:
            assert source is None
            assert self.blocked or mispriced or not limited  # (a ticket may refuse first)
            return
        assert not self.blocked
        assert not mispriced
        assert not limited
        if self.prices is not None:
            event(f"own: sold at a scheduled price ({'stepped' if price != PRICE else 'first'})")
        assert source is not None
        if source[0]:
            self.pools[channel][0] = int(self.pools[channel][0]) - source[0]
        self.count_sale(channel, quantity)
        self.issued += quantity
        self.own_sold += quantity
        self.units.extend(u["unit_id"] for u in sold["units"])

    @rule(channel=st.sampled_from(["shop", "live"]), cap=st.none() | st.integers(1, 6))
    def set_rate(self, channel: str, cap: int | None) -> None:
        self.ledger.set_rate(
            self.good, "own", channel=channel, per_minute=cap, idempotency_key=self.key()
        )
        self.caps[channel] = cap

    @rule(
        channel=st.sampled_from(["shop", "live"]),
        quantity=st.integers(1, 5),
        overflow=st.booleans(),
    )
    def allot(self, channel: str, quantity: int, overflow: bool) -> None:
        shared = self.shared
        try:
            self.ledger.allot_pool(
                self.good,
                "own",
                channel=channel,
                quantity=quantity,
                overflow=overflow,
                idempotency_key=self.key(),
            )
        except errors.SoldOutError:
            assert quantity > shared
            return
        assert quantity <= shared
        pool = self.pools.setdefault(channel, [0, False])
        pool[0] = int(pool[0]) + quantity
        pool[1] = overflow

    @rule(channel=st.sampled_from(["shop", "live"]), quantity=st.integers(1, 5), move=st.booleans())
    def give_back(self, channel: str, quantity: int, move: bool) -> None:
        """Return unsold pool units, or move them to the other channel's pool."""
        free = int(self.pools.get(channel, [0, False])[0])
        other = "live" if channel == "shop" else "shop"
        try:
            if move:
                self.ledger.move_pool(
                    self.good,
                    "own",
                    from_channel=channel,
                    to_channel=other,
                    quantity=quantity,
                    idempotency_key=self.key(),
                )
            else:
                self.ledger.return_pool(
                    self.good, "own", channel=channel, quantity=quantity, idempotency_key=self.key()
                )
        except errors.PoolShortError:
            assert quantity > free
            return
        assert quantity <= free
        self.pools[channel][0] = free - quantity
        if move:
            pool = self.pools.setdefault(other, [0, False])
            pool[0] = int(pool[0]) + quantity

    def pauses(self, tier: str) -> set[str]:
        return self.paused if tier == "own" else ({"good"} if self.late_paused else set())

    def tier_delisted(self, tier: str) -> bool:
        return self.delisted if tier == "own" else self.late_delisted

    @rule(scope=st.sampled_from(["tier", "good"]), pause=st.sampled_from([True, False, False]))
    def pause_or_resume(self, scope: str, pause: bool) -> None:
        """Pause or resume "own" itself, or the whole good (each tier still
        listed); resumes drawn twice as often, so most runs sell on."""
        targets = ["own"]
        if scope == "good":
            targets = [t for t in ("own", "late") if not self.tier_delisted(t)] or ["own"]
        change = self.ledger.pause if pause else self.ledger.resume
        try:
            change(
                self.good,
                "own" if scope == "tier" else None,
                reason=f"{scope} {'paused' if pause else 'resumed'}",
                idempotency_key=self.key(),
            )
        except errors.DelistedError:
            assert self.tier_delisted(targets[0])
            return
        except errors.ListingStateError:
            assert any((scope in self.pauses(t)) == pause for t in targets)
            return
        assert not any(self.tier_delisted(t) for t in targets)
        assert all((scope in self.pauses(t)) != pause for t in targets)
        for tier in targets:
            if tier == "late":
                self.late_paused = pause
            elif pause:
                self.paused.add(scope)
            else:
                self.paused.discard(scope)

    @rule(data=st.data())
    def delist_rarely(self, data: st.DataObject) -> None:
        """Delisting is final: drawn once in ten, so most runs go on selling."""
        if data.draw(st.integers(0, 9)) != 0:
            return
        tier = data.draw(st.sampled_from(["own", None]))
        targets = ["own"] if tier else [t for t in ("own", "late") if not self.tier_delisted(t)]
        try:
            self.ledger.delist(self.good, tier, reason="the end", idempotency_key=self.key())
        except errors.DelistedError:
            assert not targets or self.tier_delisted(targets[0])
            return
        assert targets
        assert not any(self.tier_delisted(t) for t in targets)
        self.delisted = self.delisted or "own" in targets
        self.late_delisted = self.late_delisted or "late" in targets

    @rule(after=st.none() | st.integers(1, 8), step_up=st.integers(1, 100))
    def set_prices(self, after: int | None, step_up: int) -> None:
        """Set "own"'s schedule (PRICE, then PRICE + step_up once ``after`` are
        sold), or lift it (``after`` None)."""
        steps: list[dict[str, object]] | None = None
        if after is not None:
            steps = [{"price": PRICE.to_json()}]
            steps.append({"after_sold": after, "price": Money(100 + step_up, "EUR").to_json()})
        answer = self.ledger.set_prices(self.good, "own", steps=steps, idempotency_key=self.key())
        self.prices = steps
        assert answer["price_now"] == (None if steps is None else self.price_now().to_json())

    @rule(quantity=st.integers(1, 3))
    def sell_late(self, quantity: int) -> None:
        """The second tier: refused until "own" has sold UNLOCK_AFTER units."""
        blocked = self.late_paused or self.late_delisted
        left = LATE_SUPPLY - self.late_issued
        try:
            sold = self.ledger.sell(
                self.good,
                "late",
                buyer=f"l{next(self.keys)}",
                channel="shop",
                quantity=quantity,
                unit_price=PRICE,
                idempotency_key=self.key(),
            )
        except (errors.PausedError, errors.DelistedError):
            event("late: refused, paused or delisted")
            assert blocked
            return
        except errors.TierLockedError:
            event("late: refused, locked")
            assert not blocked
            assert not self.late_open
            assert self.own_sold < UNLOCK_AFTER
            return
        except errors.SoldOutError:
            assert quantity > left  # (an opening it found due was discarded with it)
            return
        assert not blocked
        assert self.late_open or self.own_sold >= UNLOCK_AFTER
        assert quantity <= left
        event("late: sold" + ("" if self.late_open else ", opening it"))
        self.late_open = True
        self.late_issued += quantity
        assert len(sold["units"]) == quantity

    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        if not self.units:
            return
        unit = self.units.pop(data.draw(st.integers(0, len(self.units) - 1)))
        self.ledger.refund(unit, reason="changed mind", idempotency_key=self.key())
        self.issued -= 1

    # -- invariants ---------------------------------------------------------------
    @invariant()
    def the_counts_balance(self) -> None:
        stock = self.ledger.stock(self.good, "own")
        assert (stock.issued, stock.reserved, stock.pooled) == (
            self.issued,
            self.reserved,
            self.pooled,
        )
        assert stock.issued + stock.reserved + stock.pooled <= stock.supply
        assert stock.available == self.shared
        assert {c: p["free"] for c, p in stock.pools.items()} == {
            c: p[0] for c, p in self.pools.items()
        }

    @invariant()
    def the_codes_balance(self) -> None:
        if not self.coded:
            return
        counts = self.ledger.code_counts(self.good, "own")
        assert (counts["held"], counts["bound"]) == (self.reserved, self.issued)
        assert counts["available"] == SUPPLY - self.reserved - self.issued

    @invariant()
    def the_listing_is_as_the_model_says(self) -> None:
        stock = self.ledger.stock(self.good, "own")
        assert set(stock.paused) == self.paused
        assert (stock.delisted is not None) == self.delisted
        late = self.ledger.stock(self.good, "late")
        assert set(late.paused) == self.pauses("late")
        assert (late.delisted is not None) == self.late_delisted
        assert late.units_sold == late.issued == self.late_issued
        assert (late.unlocked_at is not None) == self.late_open
        assert stock.units_sold == self.own_sold
        assert stock.prices == self.prices

    @invariant()
    def every_hold_ends_once_and_as_the_model_says(self) -> None:
        stock = self.ledger.stock(self.good, "own")
        assert {h: v["state"] for h, v in stock.holds.items()} == {
            h: m.state for h, m in self.model.items()
        }


def _machine_on(make_url: Callable[[], DatabaseURL], examples: int, coded: bool) -> None:
    run_state_machine_as_test(
        lambda: HoldMachine(make_url(), coded),  # type: ignore[arg-type,return-value]
        settings=settings(max_examples=examples, stateful_step_count=50, deadline=None),
    )


@pytest.mark.parametrize("coded", [False, True], ids=["plain", "coded"])
def test_holds_balance_on_sqlite(coded: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        counter = itertools.count()
        _machine_on(
            lambda: DatabaseURL.parse(f"sqlite:///{Path(directory) / f'h{next(counter)}.db'}"),
            examples=60,
            coded=coded,
        )


@pytest.mark.postgres
@pytest.mark.parametrize("coded", [False, True], ids=["plain", "coded"])
def test_holds_balance_on_postgres(postgres_database: DatabaseURL, coded: bool) -> None:
    from ledger.store.postgres import create_schema

    counter = itertools.count()

    def fresh_schema() -> DatabaseURL:
        url = DatabaseURL.parse(
            f"{postgres_database.display()}?schema=holds{int(coded)}x{next(counter)}"
        )
        create_schema(url)
        return url

    _machine_on(fresh_schema, examples=20, coded=coded)
