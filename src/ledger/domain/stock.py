"""Tier stock: the count of one tier of one good, and its serials.

Each tier is its own aggregate, so selling ``view`` never touches ``own``.
Serials are dense: a sale takes returned serials first (lowest first), then
new ones from ``next_serial``. A serial is issued to at most one live unit,
and ``issued + reserved <= supply <= lifetime_cap`` always holds.

Reservations (holds) are two-phase transfers kept on the stock itself, so a
hold and a sale race on one aggregate version: a channel reserves N units
for a time-to-live; the hold is then resolved exactly once -- committed
(all or part becomes a sale, the rest returns), released, or expired (on or
after ``expires_at``). A payment for an expired hold follows the late rule
in :mod:`ledger.domain.holds`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.domain import limits, listing, pricing, unlock, validate
from ledger.domain.code import REF_CHARS, check_ref
from ledger.domain.errors import (
    AbsoluteEditionError,
    CodesExhaustedError,
    CodeStateError,
    EarlyBirdPriceError,
    HoldNotFoundError,
    HoldResolvedError,
    InvalidInputError,
    InvariantError,
    LifetimeCapError,
    PoolShortError,
    PriceRuleError,
    RateLimitedError,
    SaleWindowError,
    SoldOutError,
    TierLockedError,
    WaitlistError,
)
from ledger.domain.good import RESTOCKABLE, Good
from ledger.domain.ids import allowance_id_for, stock_id_for
from ledger.domain.model import OMIT_IF_NONE, Aggregate, Created, Event, format_timestamp
from ledger.domain.sale import SaleSource

REDEMPTION_CODE = "redemption-code"  # the good kind whose units each carry a code


class TierStock(Aggregate):
    good_id: str
    tier: str
    supply: int
    lifetime_cap: int
    restockable: bool
    transferable: bool
    per_buyer_limit: int | None
    sale_opens_at: str | None
    sale_closes_at: str | None
    next_serial: int
    free_serials: list[int]
    reserved: int
    # Every hold ever made: channel, quantity, expires_at and state -- "held"
    # while live, then "committed", "released" or "expired".
    holds: dict[str, dict[str, Any]]
    # Channels' pools: units allotted to a channel and not yet sold
    # ("free"), and whether it may sell on from the shared stock once its
    # pool is empty ("overflow").
    pools: dict[str, dict[str, Any]]
    # Channels' rate rules (anti-bot): channel -> units a minute, and the
    # units sold in the current minute (counted from the sales themselves).
    rates: dict[str, dict[str, Any]]
    # Buyers waiting for a restock, in the order they joined: entry id ->
    # buyer, channel, quantity, state ("waiting", then "offered" or "left").
    waitlist: dict[str, dict[str, Any]]
    # Redemption codes (goods of kind "redemption-code" only): every unit sold
    # takes one. The free codes' refs, concatenated in the order they will be
    # bound (an immutable string: copying the stock never copies the pool);
    # a hold lends codes from the front and returns what it does not use.
    coded: bool
    codes_free: str
    codes_imported: int
    # The tier's early-bird allotment (its definition's, or None), and how
    # many of its units have been sold.
    early_bird: dict[str, Any] | None
    early_bird_sold: int
    # Pauses in force, by scope ("good", "tier") -> reason and since; and the
    # delisting (scope, reason, since), final (see ledger.domain.listing).
    paused: dict[str, dict[str, Any]]
    delisted: dict[str, Any] | None
    # The tier's unlock condition (its definition's, or None), when it
    # opened (None: not yet), and its units ever sold (refunds not
    # subtracted: what another tier's unlock counts).
    unlock: dict[str, Any] | None
    unlocked_at: str | None
    units_sold: int
    # The tier's price schedule in force (ledger.domain.pricing), or None.
    prices: list[dict[str, Any]] | None

    @classmethod
    def open(cls, good: Good, tier_name: str, now: datetime) -> TierStock:
        tier = good.tier(tier_name)
        spec = good.spec
        return cls._create(
            cls.Opened,
            stock_id_for(good.id, tier.name),
            now,
            good_id=str(good.id),
            tier=tier.name,
            supply=tier.quota,
            lifetime_cap=tier.lifetime_cap or tier.quota,
            restockable=spec.edition_policy == RESTOCKABLE,
            transferable=tier.transferable,
            per_buyer_limit=tier.per_buyer_limit,
            sale_opens_at=spec.sale_opens_at,
            sale_closes_at=spec.sale_closes_at,
            coded=True if spec.kind == REDEMPTION_CODE else None,
            early_bird=tier.early_bird.to_json() if tier.early_bird else None,
            unlock=tier.unlock.to_json() if tier.unlock else None,
        )

    # -- queries ----------------------------------------------------------
    @property
    def issued(self) -> int:
        """Units currently issued (held by someone)."""
        return self.next_serial - 1 - len(self.free_serials)

    @property
    def pooled(self) -> int:
        """Units allotted to channels' pools and not yet sold."""
        return sum(int(p["free"]) for p in self.pools.values())

    @property
    def available(self) -> int:
        """Units in the shared stock: neither issued, held nor pooled."""
        return self.supply - self.issued - self.reserved - self.pooled

    @property
    def remaining(self) -> int:
        """Units a sale or a reservation could still take, from any pool:
        neither issued nor held (and, on a coded tier, with a free code)."""
        left = self.supply - self.issued - self.reserved
        return min(left, self.codes_available) if self.coded else left

    @property
    def codes_available(self) -> int:
        """Free codes: neither bound to a unit nor lent to a hold."""
        return len(self.codes_free) // REF_CHARS

    def codes_for(self, quantity: int) -> list[str] | None:
        """The codes the next ``quantity`` units would take (None: not a coded tier)."""
        if not self.coded:
            return None
        if quantity > self.codes_available:
            raise CodesExhaustedError(self.tier, quantity, self.codes_available)
        pool = self.codes_free
        return [pool[i * REF_CHARS : (i + 1) * REF_CHARS] for i in range(quantity)]

    def sources(self, channel: str, quantity: int, *, freed: int = 0) -> tuple[int, int]:
        """Where a sale of ``quantity`` by ``channel`` comes from: (from its
        pool, from the shared stock); refuses what cannot be sold. ``freed``:
        held units about to return to the shared stock first."""
        available = self.available + freed
        pool = self.pools.get(channel)
        if pool is None:
            if quantity > available:
                raise SoldOutError(self.tier, quantity, available)
            return 0, quantity
        from_pool = min(quantity, int(pool["free"]))
        rest = quantity - from_pool
        if rest and not pool["overflow"]:
            raise SoldOutError(self.tier, quantity, from_pool)
        if rest > available:
            raise SoldOutError(self.tier, quantity, from_pool + available)
        return from_pool, rest

    def find_hold(self, hold_id: str) -> dict[str, Any]:
        """A hold in any state."""
        found = self.holds.get(hold_id)
        if found is None:
            raise HoldNotFoundError(hold_id, self.tier)
        return found

    def hold(self, hold_id: str) -> dict[str, Any]:
        """A live hold, or why there is none."""
        found = self.find_hold(hold_id)
        if found["state"] != "held":
            raise HoldResolvedError(hold_id, found["state"])
        return found

    def due_holds(self, now: datetime) -> list[str]:
        """Live holds whose time is up, soonest first."""
        moment = format_timestamp(now)
        due = [
            h for h, v in self.holds.items() if v["state"] == "held" and v["expires_at"] <= moment
        ]
        return sorted(due, key=lambda h: (self.holds[h]["expires_at"], h))

    def serials_for(self, quantity: int) -> list[int]:
        """The serials a sale of ``quantity`` would take, in order."""
        reused = self.free_serials[:quantity]
        fresh = range(self.next_serial, self.next_serial + quantity - len(reused))
        return [*reused, *fresh]

    def check_rate(self, channel: str, quantity: int, now: datetime) -> None:
        """A channel's rate rule holds with the sale, on the same version."""
        rule = self.rates.get(channel)
        if rule is None or rule["per_minute"] is None:
            return
        sold = rule["sold"] if rule["minute"] == format_timestamp(now)[:16] else 0
        if sold + quantity > rule["per_minute"]:
            raise RateLimitedError(channel, self.tier, rule["per_minute"], sold)

    def set_rate(self, *, channel: str, per_minute: int | None, now: datetime) -> None:
        """Cap ``channel``'s primary sales of this tier per minute (None: no cap)."""
        if per_minute is not None:  # (None lifts the cap)
            validate.integer(per_minute, field="per_minute", low=1, high=limits.TIER_QUOTA_MAX)
        self._trigger(TierStock.RateSet, now, channel=channel, per_minute=per_minute)

    def set_prices(self, *, steps: list[dict[str, Any]] | None, now: datetime) -> None:
        """Set the tier's price schedule (checked by ledger.domain.pricing; None lifts it)."""
        self._trigger(TierStock.PriceSet, now, steps=steps)

    def early_bird_for(self, quantity: int, now: datetime) -> bool:
        """Whether a sale of ``quantity`` now is an early-bird sale: the
        allotment's window is open and it still has that many units."""
        early = self.early_bird
        if early is None:
            return False
        moment = format_timestamp(now)
        return bool(
            early["opens_at"] <= moment < early["closes_at"]
            and self.early_bird_sold + quantity <= early["quantity"]
        )

    def check_sale(
        self,
        quantity: int,
        now: datetime,
        channel: str | None = None,
        rate_channel: str | None = None,
        unit_price: dict[str, Any] | None = None,
        price: dict[str, Any] | None = None,
    ) -> None:
        """Refuse a sale that cannot happen; with ``channel``, the channel's
        pool comes first (without, the sale is from the shared stock); with
        ``rate_channel``, that channel's rate rule must hold. With
        ``unit_price``, an early-bird sale is possible: inside the
        allotment's window and quantity it needs no sale window, but must
        be at the early-bird price (without, only the sale window counts:
        a hold's sale). With ``price`` (the sale's unit price), any other
        sale must pay its price schedule's price in force."""
        if not isinstance(quantity, int) or not 1 <= quantity <= limits.SALE_QUANTITY_MAX:
            raise InvalidInputError("quantity", f"must be 1 to {limits.SALE_QUANTITY_MAX}")
        self.check_listed()
        self._check_unlocked()
        if unit_price is not None and self.early_bird_for(quantity, now):
            if self.early_bird is None:
                raise InvariantError("self.early_bird unset")
            if unit_price != self.early_bird["price"]:
                raise EarlyBirdPriceError(self.tier, self.early_bird["price"])
        else:
            self._check_window(now)
            if self.prices is not None and price is not None:
                in_force = pricing.price_in_force(self.prices, self.units_sold, now)
                if price != in_force:
                    raise PriceRuleError(self.tier, in_force)
        if rate_channel is not None:
            self.check_rate(rate_channel, quantity, now)
        if channel is not None:
            self.sources(channel, quantity)
        elif quantity > self.available:
            raise SoldOutError(self.tier, quantity, self.available)
        self.codes_for(quantity)

    @property
    def locked(self) -> bool:
        """Not open yet: its unlock condition has not been recorded as met."""
        return self.unlock is not None and self.unlocked_at is None

    def open_if_due(self, now: datetime, sold: int | None) -> None:
        """Record the tier's opening if its condition holds now (``sold``: the
        units sold of the tier it waits on), or refuse what a locked tier
        cannot do, saying what opens it."""
        if self.unlock is None or self.unlocked_at is not None:
            return
        self.check_listed()  # (a paused tier does not open: its sale would be refused)
        if not unlock.due(self.unlock, now, sold):
            raise TierLockedError(self.tier, self.unlock, unlock.describe(self.unlock, sold))
        cause = "time" if "at" in self.unlock else "sales"
        self._trigger(TierStock.Unlocked, now, cause=cause, sold=sold if cause == "sales" else None)

    def _check_unlocked(self) -> None:
        if self.locked:
            if self.unlock is None:
                raise InvariantError("self.unlock unset")
            raise TierLockedError(self.tier, self.unlock, unlock.describe(self.unlock))

    def check_listed(self) -> None:
        """Refuse a sale, hold or restock of a paused or delisted tier."""
        if self.paused or self.delisted is not None:
            listing.check_listed(self.tier, self.paused, self.delisted)

    def _check_window(self, now: datetime) -> None:
        moment = format_timestamp(now)
        if self.sale_opens_at is not None and moment < self.sale_opens_at:
            raise SaleWindowError(f"sales of tier {self.tier!r} open at {self.sale_opens_at}")
        if self.sale_closes_at is not None and moment >= self.sale_closes_at:
            raise SaleWindowError(f"sales of tier {self.tier!r} closed at {self.sale_closes_at}")

    # -- commands ---------------------------------------------------------
    def sell(
        self,
        *,
        sale_id: str,
        buyer: str,
        channel: str,
        quantity: int,
        unit_price: dict[str, Any],
        split: list[dict[str, Any]],
        now: datetime,
        source: SaleSource = SaleSource.DIRECT,
    ) -> list[int]:
        """A primary sale; through a channel with a pool, from the pool first
        unless ``source`` says otherwise (a hold's units are from the shared
        stock), and an early-bird sale only if ``source`` may be one."""
        pool_channel = channel if source.draws_pool else None
        self.check_sale(
            quantity,
            now,
            pool_channel,
            rate_channel=channel,
            unit_price=unit_price if source.may_be_early_bird else None,
            price=unit_price,
        )
        early = source.may_be_early_bird and self.early_bird_for(quantity, now)
        drawn = self.sources(channel, quantity)[0] if pool_channel is not None else 0
        if drawn:
            self._trigger(
                TierStock.PoolDrawn, now, channel=channel, quantity=drawn, sale_id=sale_id
            )
        serials = self.serials_for(quantity)
        self._trigger(
            TierStock.Sold,
            now,
            sale_id=sale_id,
            buyer=buyer,
            channel=channel,
            serials=serials,
            unit_price=unit_price,
            split=split,
            codes=self.codes_for(quantity),
            early_bird=True if early else None,
        )
        return serials

    def reserve(
        self,
        *,
        hold_id: str,
        channel: str,
        quantity: int,
        ttl_seconds: int,
        now: datetime,
        waitlist: bool = False,
    ) -> str:
        """Hold ``quantity`` units for ``channel``; returns when the hold expires."""
        validate.integer(quantity, field="quantity", low=1, high=limits.HOLD_QUANTITY_MAX)
        validate.integer(
            ttl_seconds,
            field="ttl_seconds",
            low=limits.HOLD_TTL_SECONDS_MIN,
            high=limits.HOLD_TTL_SECONDS_MAX,
        )
        if hold_id in self.holds or (hold_id in self.waitlist) != waitlist:
            raise AssertionError(f"hold {hold_id} exists already")  # ids are command ids
        self.check_listed()
        self._check_unlocked()
        self._check_window(now)
        if quantity > self.available:
            raise SoldOutError(self.tier, quantity, self.available)
        codes = self.codes_for(quantity)
        expires_at = format_timestamp(now + timedelta(seconds=ttl_seconds))
        self._trigger(
            TierStock.Reserved,
            now,
            hold_id=hold_id,
            channel=channel,
            quantity=quantity,
            expires_at=expires_at,
            codes=codes,
        )
        return expires_at

    def commit_hold(self, *, hold_id: str, sale_id: str, quantity: int, now: datetime) -> None:
        """Turn ``quantity`` of a live, unexpired hold into a sale (the caller
        records the sale next); the rest of the hold returns to stock."""
        hold = self.hold(hold_id)
        self.check_listed()  # (its sale would be refused: refuse before any change)
        if format_timestamp(now) >= hold["expires_at"]:
            raise AssertionError("expire a due hold before committing it")
        validate.integer(quantity, field="quantity", low=1, high=hold["quantity"])
        self._trigger(
            TierStock.HoldCommitted,
            now,
            hold_id=hold_id,
            sale_id=sale_id,
            quantity=quantity,
            returned=hold["quantity"] - quantity,
        )

    def release_hold(self, hold_id: str, *, now: datetime, expired: bool = False) -> None:
        hold = self.hold(hold_id)
        if expired and format_timestamp(now) < hold["expires_at"]:
            raise AssertionError("a hold expires only at its time")
        self._trigger(
            TierStock.HoldReleased,
            now,
            hold_id=hold_id,
            quantity=hold["quantity"],
            reason="expired" if expired else "released",
        )

    def expire_due(self, now: datetime) -> list[str]:
        """Release every hold whose time is up; returns their ids."""
        due = self.due_holds(now)
        for hold_id in due:
            self.release_hold(hold_id, now=now, expired=True)
        return due

    def owe_refund(
        self,
        *,
        hold_id: str,
        refund_id: str,
        buyer: str,
        quantity: int,
        amount: dict[str, Any],
        now: datetime,
    ) -> None:
        """A payment for an expired hold found no stock left: record what the
        channel owes the buyer back."""
        if self.find_hold(hold_id)["state"] != "expired":
            raise AssertionError("a refund is owed only for an expired hold")
        self._trigger(
            TierStock.RefundOwed,
            now,
            hold_id=hold_id,
            refund_id=refund_id,
            buyer=buyer,
            quantity=quantity,
            amount=amount,
        )

    def allot(self, *, channel: str, quantity: int, overflow: bool, now: datetime) -> None:
        """Move ``quantity`` units from the shared stock into ``channel``'s pool."""
        validate.integer(quantity, field="quantity", low=1, high=limits.TIER_QUOTA_MAX)
        validate.boolean(overflow, field="overflow")
        if quantity > self.available:
            raise SoldOutError(self.tier, quantity, self.available)
        self._trigger(
            TierStock.Allotted, now, channel=channel, quantity=quantity, overflow=overflow
        )

    def return_pool(self, *, channel: str, quantity: int, now: datetime) -> None:
        """Move ``quantity`` unsold units of ``channel``'s pool back to the shared stock."""
        validate.integer(quantity, field="quantity", low=1, high=limits.TIER_QUOTA_MAX)
        free = int(self.pools.get(channel, {"free": 0})["free"])
        if quantity > free:
            raise PoolShortError(channel, self.tier, quantity, free)
        self._trigger(TierStock.PoolReturned, now, channel=channel, quantity=quantity)

    def restock(self, quantity: int, now: datetime) -> list[str]:
        """Raise the supply; then offer holds to the waitlist, first come first
        served, as far as the new units go. Returns the entries offered."""
        if not isinstance(quantity, int) or not 1 <= quantity <= limits.TIER_QUOTA_MAX:
            raise InvalidInputError("quantity", f"must be 1 to {limits.TIER_QUOTA_MAX}")
        if not self.restockable:
            raise AbsoluteEditionError(self.good_id)
        self.check_listed()
        if self.supply + quantity > self.lifetime_cap:
            raise LifetimeCapError(self.tier, self.lifetime_cap, self.supply, quantity)
        self._trigger(TierStock.Restocked, now, quantity=quantity, supply=self.supply + quantity)
        return self.offer_waitlist(now)

    def pause(self, *, scope: str, reason: str, now: datetime) -> None:
        """Stop sales, holds and restocks until :meth:`resume` (``scope``: the
        good's pause, recorded on each of its tiers, or the tier's own)."""
        listing.check_pause(self.tier, listing.check_scope(scope), self.paused, self.delisted)
        self._trigger(TierStock.Paused, now, scope=scope, reason=listing.check_reason(reason))

    def resume(self, *, scope: str, reason: str, now: datetime) -> None:
        listing.check_resume(self.tier, listing.check_scope(scope), self.paused, self.delisted)
        self._trigger(TierStock.Resumed, now, scope=scope, reason=listing.check_reason(reason))

    def delist(self, *, scope: str, reason: str, now: datetime) -> None:
        """Stop selling for good (see :mod:`ledger.domain.listing`)."""
        listing.check_scope(scope)
        listing.check_delist(self.tier, self.delisted)
        self._trigger(TierStock.Delisted, now, scope=scope, reason=listing.check_reason(reason))

    def waiting(self) -> list[str]:
        """Waiting entries, first come first."""
        return [e for e, v in self.waitlist.items() if v["state"] == "waiting"]

    def offer_waitlist(self, now: datetime) -> list[str]:
        """Hold units for waiting buyers in order, stopping at the first whose
        quantity no longer fits (nobody jumps the line)."""
        offered: list[str] = []
        if self.locked:
            return offered  # (a hold of a tier not open yet is no use either)
        try:
            self._check_window(now)
        except SaleWindowError:
            return offered  # outside the sale window a hold is no use to anyone
        for entry_id in self.waiting():
            entry = self.waitlist[entry_id]
            if entry["quantity"] > self.available or (
                self.coded and entry["quantity"] > self.codes_available
            ):
                break
            self.reserve(
                hold_id=entry_id,
                channel=entry["channel"],
                quantity=entry["quantity"],
                ttl_seconds=limits.WAITLIST_OFFER_TTL_SECONDS,
                now=now,
                waitlist=True,
            )
            offered.append(entry_id)
        return offered

    def join_waitlist(
        self, *, entry_id: str, buyer: str, channel: str, quantity: int, now: datetime
    ) -> int:
        """Wait for a restock; only when the tier cannot serve ``quantity`` now.
        Returns the place in line (1 = next)."""
        validate.integer(quantity, field="quantity", low=1, high=limits.HOLD_QUANTITY_MAX)
        if not self.restockable:
            raise AbsoluteEditionError(self.good_id)
        listing.check_delist(self.tier, self.delisted)  # (a paused tier may be waited for)
        if quantity <= self.available:
            raise WaitlistError(
                f"tier {self.tier!r} has {self.available} unit(s) available: "
                "buy them rather than wait"
            )
        waiting = self.waiting()
        if len(waiting) >= limits.WAITLIST_MAX:
            raise WaitlistError(f"the waitlist of tier {self.tier!r} is full")
        if entry_id in self.waitlist or entry_id in self.holds:
            raise AssertionError(f"waitlist entry {entry_id} exists already")
        self._trigger(
            TierStock.Waitlisted,
            now,
            entry_id=entry_id,
            buyer=buyer,
            channel=channel,
            quantity=quantity,
        )
        return len(waiting) + 1

    def leave_waitlist(self, entry_id: str, now: datetime) -> None:
        entry = self.waitlist.get(entry_id)
        if entry is None or entry["state"] != "waiting":
            raise WaitlistError(
                f"entry {entry_id} is not waiting"
                + (f" (it was {entry['state']})" if entry else "")
            )
        self._trigger(TierStock.WaitlistLeft, now, entry_id=entry_id)

    def import_codes(self, *, batch_id: str, refs: list[str], now: datetime) -> None:
        """Add a batch of codes (by ref; each code's own aggregate, created in
        the same transaction, is what makes it unique) to the pool."""
        if not self.coded:
            raise CodeStateError(
                f"tier {self.tier!r} is not of a {REDEMPTION_CODE} good: its units carry no codes"
            )
        if not 1 <= len(refs) <= limits.CODES_PER_IMPORT_MAX:
            raise InvalidInputError("codes", f"a batch holds 1 to {limits.CODES_PER_IMPORT_MAX}")
        for ref in refs:
            check_ref(ref)
        self._trigger(TierStock.CodesImported, now, batch_id=batch_id, refs=refs)

    def return_code(self, *, ref: str, refund_id: str, now: datetime) -> None:
        """A refunded sale's undelivered code goes back to the pool."""
        self._trigger(TierStock.CodeReturned, now, ref=ref, refund_id=refund_id)

    def take_back(self, *, serial: int, refund_id: str, now: datetime) -> None:
        """A refunded primary sale returns its serial to stock."""
        if not 1 <= serial < self.next_serial or serial in self.free_serials:
            raise AssertionError(f"serial {serial} of {self.tier!r} is not issued")
        self._trigger(TierStock.Returned, now, serial=serial, refund_id=refund_id)

    # -- events -----------------------------------------------------------
    @dataclass(frozen=True)
    class Opened(Created):
        TYPE = "stock.opened"
        good_id: str
        tier: str
        supply: int
        lifetime_cap: int
        restockable: bool
        transferable: bool
        per_buyer_limit: int | None
        sale_opens_at: str | None
        sale_closes_at: str | None
        coded: bool | None = field(default=None, metadata=OMIT_IF_NONE)
        early_bird: dict[str, Any] | None = field(default=None, metadata=OMIT_IF_NONE)
        unlock: dict[str, Any] | None = field(default=None, metadata=OMIT_IF_NONE)

        def apply(self, aggregate: TierStock) -> None:
            for name in (
                "good_id",
                "tier",
                "supply",
                "lifetime_cap",
                "restockable",
                "transferable",
                "per_buyer_limit",
                "sale_opens_at",
                "sale_closes_at",
            ):
                setattr(aggregate, name, getattr(self, name))
            aggregate.coded = bool(self.coded)
            aggregate.early_bird = self.early_bird
            aggregate.early_bird_sold = 0
            aggregate.codes_free = ""
            aggregate.codes_imported = 0
            aggregate.next_serial = 1
            aggregate.free_serials = []
            aggregate.reserved = 0
            aggregate.holds = {}
            aggregate.pools = {}
            aggregate.waitlist = {}
            aggregate.rates = {}
            aggregate.paused = {}
            aggregate.delisted = None
            aggregate.unlock = self.unlock
            aggregate.unlocked_at = None
            aggregate.units_sold = 0
            aggregate.prices = None

    @dataclass(frozen=True)
    class Sold(Event):
        TYPE = "stock.sold"
        sale_id: str
        buyer: str
        channel: str
        serials: list[int]
        unit_price: dict[str, Any]
        split: list[dict[str, Any]]
        codes: list[str] | None = field(default=None, metadata=OMIT_IF_NONE)
        early_bird: bool | None = field(default=None, metadata=OMIT_IF_NONE)

        def apply(self, aggregate: TierStock) -> None:
            if self.codes:
                _take_codes(aggregate, self.codes)
            if self.early_bird:
                aggregate.early_bird_sold += len(self.serials)
            aggregate.units_sold += len(self.serials)
            for serial in self.serials:
                if serial == aggregate.next_serial:
                    aggregate.next_serial += 1
                else:
                    aggregate.free_serials.remove(serial)
            rule = aggregate.rates.get(self.channel)
            if rule is not None:
                minute = format_timestamp(self.timestamp)[:16]
                if rule["minute"] != minute:
                    rule["minute"], rule["sold"] = minute, 0
                rule["sold"] += len(self.serials)

    @dataclass(frozen=True)
    class Restocked(Event):
        TYPE = "stock.restocked"
        quantity: int
        supply: int

        def apply(self, aggregate: TierStock) -> None:
            aggregate.supply = self.supply

    @dataclass(frozen=True)
    class Returned(Event):
        TYPE = "stock.returned"
        serial: int
        refund_id: str

        def apply(self, aggregate: TierStock) -> None:
            bisect.insort(aggregate.free_serials, self.serial)

    @dataclass(frozen=True)
    class Reserved(Event):
        TYPE = "stock.reserved"
        hold_id: str
        channel: str
        quantity: int
        expires_at: str
        codes: list[str] | None = field(default=None, metadata=OMIT_IF_NONE)

        def apply(self, aggregate: TierStock) -> None:
            aggregate.holds[self.hold_id] = {
                "channel": self.channel,
                "quantity": self.quantity,
                "expires_at": self.expires_at,
                "state": "held",
            }
            if self.codes:
                _take_codes(aggregate, self.codes)
                aggregate.holds[self.hold_id]["codes"] = list(self.codes)
            aggregate.reserved += self.quantity
            entry = aggregate.waitlist.get(self.hold_id)
            if entry is not None:  # a restock's offer to a waiting buyer
                entry["state"] = "offered"

    @dataclass(frozen=True)
    class HoldCommitted(Event):
        TYPE = "stock.hold-committed"
        hold_id: str
        sale_id: str
        quantity: int
        returned: int

        def apply(self, aggregate: TierStock) -> None:
            hold = aggregate.holds[self.hold_id]
            aggregate.reserved -= hold["quantity"]
            hold["state"] = "committed"
            codes = hold.pop("codes", None)
            if codes:  # the sale that follows binds the first ones; the rest return
                kept = "".join(codes[: self.quantity])
                aggregate.codes_free = kept + aggregate.codes_free + "".join(codes[self.quantity :])

    @dataclass(frozen=True)
    class HoldReleased(Event):
        TYPE = "stock.hold-released"
        hold_id: str
        quantity: int
        reason: str  # released | expired

        def apply(self, aggregate: TierStock) -> None:
            hold = aggregate.holds[self.hold_id]
            aggregate.reserved -= hold["quantity"]
            hold["state"] = self.reason
            aggregate.codes_free += "".join(hold.pop("codes", ()))

    @dataclass(frozen=True)
    class RefundOwed(Event):
        TYPE = "stock.refund-owed"
        hold_id: str
        refund_id: str
        buyer: str
        quantity: int
        amount: dict[str, Any]

        def apply(self, aggregate: TierStock) -> None:
            aggregate.holds[self.hold_id]["refund_owed"] = self.refund_id

    @dataclass(frozen=True)
    class Allotted(Event):
        TYPE = "stock.allotted"
        channel: str
        quantity: int
        overflow: bool

        def apply(self, aggregate: TierStock) -> None:
            pool = aggregate.pools.setdefault(self.channel, {"free": 0, "overflow": False})
            pool["free"] += self.quantity
            pool["overflow"] = self.overflow

    @dataclass(frozen=True)
    class PoolReturned(Event):
        TYPE = "stock.pool-returned"
        channel: str
        quantity: int

        def apply(self, aggregate: TierStock) -> None:
            aggregate.pools[self.channel]["free"] -= self.quantity

    @dataclass(frozen=True)
    class PoolDrawn(Event):
        TYPE = "stock.pool-drawn"
        channel: str
        quantity: int
        sale_id: str

        def apply(self, aggregate: TierStock) -> None:
            aggregate.pools[self.channel]["free"] -= self.quantity

    @dataclass(frozen=True)
    class RateSet(Event):
        TYPE = "stock.rate-set"
        channel: str
        per_minute: int | None

        def apply(self, aggregate: TierStock) -> None:
            rule = aggregate.rates.setdefault(self.channel, {"minute": "", "sold": 0})
            rule["per_minute"] = self.per_minute

    @dataclass(frozen=True)
    class PriceSet(Event):
        TYPE = "stock.price-set"
        steps: list[dict[str, Any]] | None

        def apply(self, aggregate: TierStock) -> None:
            aggregate.prices = self.steps

    @dataclass(frozen=True)
    class Unlocked(Event):
        TYPE = "stock.unlocked"
        cause: str  # "time" | "sales"
        sold: int | None = field(default=None, metadata=OMIT_IF_NONE)

        def apply(self, aggregate: TierStock) -> None:
            aggregate.unlocked_at = format_timestamp(self.timestamp)

    @dataclass(frozen=True)
    class Paused(Event):
        TYPE = "stock.paused"
        scope: str
        reason: str

        def apply(self, aggregate: TierStock) -> None:
            since = format_timestamp(self.timestamp)
            aggregate.paused[self.scope] = {"reason": self.reason, "since": since}

    @dataclass(frozen=True)
    class Resumed(Event):
        TYPE = "stock.resumed"
        scope: str
        reason: str

        def apply(self, aggregate: TierStock) -> None:
            del aggregate.paused[self.scope]

    @dataclass(frozen=True)
    class Delisted(Event):
        TYPE = "stock.delisted"
        scope: str
        reason: str

        def apply(self, aggregate: TierStock) -> None:
            since = format_timestamp(self.timestamp)
            aggregate.delisted = {"scope": self.scope, "reason": self.reason, "since": since}

    @dataclass(frozen=True)
    class Waitlisted(Event):
        TYPE = "stock.waitlisted"
        entry_id: str
        buyer: str
        channel: str
        quantity: int

        def apply(self, aggregate: TierStock) -> None:
            aggregate.waitlist[self.entry_id] = {
                "buyer": self.buyer,
                "channel": self.channel,
                "quantity": self.quantity,
                "state": "waiting",
            }

    @dataclass(frozen=True)
    class WaitlistLeft(Event):
        TYPE = "stock.waitlist-left"
        entry_id: str

        def apply(self, aggregate: TierStock) -> None:
            aggregate.waitlist[self.entry_id]["state"] = "left"

    @dataclass(frozen=True)
    class CodesImported(Event):
        TYPE = "stock.codes-imported"
        batch_id: str
        refs: list[str]

        def apply(self, aggregate: TierStock) -> None:
            aggregate.codes_free += "".join(self.refs)
            aggregate.codes_imported += len(self.refs)

    @dataclass(frozen=True)
    class CodeReturned(Event):
        TYPE = "stock.code-returned"
        ref: str
        refund_id: str

        def apply(self, aggregate: TierStock) -> None:
            aggregate.codes_free += self.ref


def _take_codes(stock: TierStock, refs: list[str]) -> None:
    """Take ``refs`` out of the free pool (they are its front, as the
    commands pick them; anywhere else is tolerated, as a replay must be)."""
    taken = "".join(refs)
    if stock.codes_free.startswith(taken):
        stock.codes_free = stock.codes_free[len(taken) :]
        return
    pool = [stock.codes_free[i : i + REF_CHARS] for i in range(0, len(stock.codes_free), REF_CHARS)]
    for ref in refs:
        pool.remove(ref)
    stock.codes_free = "".join(pool)


TierStock.Opened.AGGREGATE = TierStock


class BuyerAllowance(Aggregate):
    """How many units of one tier one buyer has bought (primary sales, net of
    refunds). Exists only for tiers with a per-buyer limit; being its own
    aggregate, two sales to one buyer conflict in the store, so the limit
    holds across processes."""

    stock_id: str
    buyer: str
    bought: int

    @classmethod
    def start(cls, stock: TierStock, buyer: str, now: datetime) -> BuyerAllowance:
        return cls._create(
            cls.Started,
            allowance_id_for(stock.id, buyer),
            now,
            stock_id=str(stock.id),
            buyer=buyer,
        )

    def count(self, delta: int, reference: str, now: datetime) -> None:
        if self.bought + delta < 0:
            raise AssertionError("a buyer cannot have bought fewer than zero units")
        self._trigger(BuyerAllowance.Counted, now, delta=delta, reference=reference)

    @dataclass(frozen=True)
    class Started(Created):
        TYPE = "allowance.started"
        stock_id: str
        buyer: str

        def apply(self, aggregate: BuyerAllowance) -> None:
            aggregate.stock_id = self.stock_id
            aggregate.buyer = self.buyer
            aggregate.bought = 0

    @dataclass(frozen=True)
    class Counted(Event):
        TYPE = "allowance.counted"
        delta: int
        reference: str

        def apply(self, aggregate: BuyerAllowance) -> None:
            aggregate.bought += self.delta


BuyerAllowance.Started.AGGREGATE = BuyerAllowance
